"""Polarizing front end (dissertation §4.1): L1-normalized conv filters, ternary quantization.

z_k = (w_k * x) / ||w_k||_1; bump regularizers B1 (spread z over [-1, 1]) and B2 (push z away
from the thresholds +-c) polarize z into clusters at -1, 0, 1; then f(z) = 0.5 sgn(z - c) +
0.5 sgn(z + c) removes any perturbation too small to cross a threshold (Proposition 1).
The quantizer has no gradient; attacks go through its BPDA surrogate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from advbench.models.bpda import BPDALayer


class L1NormalizedConv2d(nn.Conv2d):
    """Conv whose every output channel is divided by the L1 norm of its filter (no bias)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(cin, cout, kernel, stride, padding, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1 = self.weight.abs().flatten(1).sum(1).clamp_min(1e-12)
        return self._conv_forward(x, self.weight, None) / l1.view(1, -1, 1, 1)


class TernaryQuantizer(BPDALayer):
    """f(z) = 0.5 sgn(z - c) + 0.5 sgn(z + c), values in {-1, 0, 1}.

    Surrogate: 0.5 tanh(s (z - c)) + 0.5 tanh(s (z + c)) with steepness s, or the identity
    (straight-through) when `steepness` is None.
    """

    def __init__(self, threshold: float = 0.3, steepness: float | None = 10.0) -> None:
        super().__init__()
        self.threshold, self.steepness = threshold, steepness

    def exact(self, z: torch.Tensor) -> torch.Tensor:
        # Eq. 4.3 without its half-levels at exactly +-c (sgn(0) = 0): ties go to the dead zone.
        c = self.threshold
        return (z > c).to(z.dtype) - (z < -c).to(z.dtype)

    def surrogate(self, z: torch.Tensor) -> torch.Tensor:
        if self.steepness is None:
            return z
        c, s = self.threshold, self.steepness
        return 0.5 * torch.tanh(s * (z - c)) + 0.5 * torch.tanh(s * (z + c))

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, steepness={self.steepness}"


def bump_b1(z: torch.Tensor, sigma1: float = 0.35) -> torch.Tensor:
    """B1(z) = exp(-z^2 / 2 sigma1^2): penalizes activations near 0 (stage 1)."""
    return torch.exp(-z.pow(2) / (2 * sigma1**2))


def bump_b2(z: torch.Tensor, threshold: float = 0.3, sigma2: float = 0.15) -> torch.Tensor:
    """B2(z) = exp(-(z-c)^2 / 2 sigma2^2) + exp(-(z+c)^2 / 2 sigma2^2): penalizes the danger zones (stage 2)."""
    return torch.exp(-(z - threshold).pow(2) / (2 * sigma2**2)) + torch.exp(
        -(z + threshold).pow(2) / (2 * sigma2**2)
    )


class MadryCNN(nn.Module):
    """The MNIST CNN of Madry et al.: conv 32 5x5, maxpool, conv 64 5x5, maxpool, FC 1024, FC."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, hidden: int = 1024
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * (input_size // 4) ** 2, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class PolarizingFrontEnd(nn.Module):
    """L1-normalized filters then (from training stage 3 on) the ternary quantizer, before a classifier.

    The front end keeps the image size ("same" padding) and outputs `filters` channels that the
    classifier takes as its input channels.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        filters: int = 64,
        kernel: int = 5,
        threshold: float = 0.3,
        steepness: float | None = 10.0,
        quantize: bool = True,
    ) -> None:
        super().__init__()
        self.front = L1NormalizedConv2d(in_channels, filters, kernel, padding=kernel // 2)
        self.quantizer = TernaryQuantizer(threshold, steepness)
        self.quantize = quantize
        self.classifier = MadryCNN(num_classes, filters, input_size)
        self.last_activations: torch.Tensor | None = (
            None  # z, for the bump regularizers while training
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.front(x)
        self.last_activations = z if self.training else None
        return self.classifier(self.quantizer(z) if self.quantize else z)
