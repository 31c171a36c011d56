"""Parametric noise injection (PNI, He et al. 2019) and its colored variant CPNI
(smoothed-inference paper §4.4): noise with a learned scale, on weights or activations, at
training and at inference, so the model is `stochastic`.

White noise: w + alpha * std(w) * N(0, I). Colored noise: the N(0, I) draw is replaced by a
draw with covariance Sigma = D + L^T L (D diagonal, L of rank r), learned with the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ColoredNoise(nn.Module):
    """Gaussian vectors of length n with covariance D + L^T L (L: r x n)."""

    def __init__(self, n: int, rank: int = 5, init_scale: float = 0.1) -> None:
        super().__init__()
        self.n, self.rank = n, rank
        self.log_d = nn.Parameter(torch.zeros(n))  # D = diag(exp(log_d)), positive by construction
        self.low_rank = nn.Parameter(init_scale * torch.randn(rank, n) / rank**0.5)

    def covariance(self) -> torch.Tensor:
        return torch.diag(self.log_d.exp()) + self.low_rank.t() @ self.low_rank

    def sample(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`count` draws, shape (count, n): sqrt(D) z1 + L^T z2 has covariance D + L^T L."""
        dev = self.log_d.device
        z1 = torch.randn(count, self.n, generator=generator, device=dev)
        z2 = torch.randn(count, self.rank, generator=generator, device=dev)
        return z1 * (0.5 * self.log_d).exp() + z2 @ self.low_rank


class NoisyConv2d(nn.Conv2d):
    """Conv whose weights get fresh noise every forward pass: alpha * std(w) * (white or colored) noise."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, colored_rank: int | None = None, alpha: float = 0.25) -> None:
        super().__init__(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.alpha = nn.Parameter(torch.tensor(alpha))
        self.colored = ColoredNoise(cin * kernel * kernel, colored_rank) if colored_rank else None

    is_stochastic = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.colored is not None:
            noise = self.colored.sample(self.out_channels).view_as(self.weight)
        else:
            noise = torch.randn_like(self.weight)
        weight = self.weight + self.alpha * self.weight.detach().std() * noise
        return self._conv_forward(x, weight, None)


class NoisyActivation(nn.Module):
    """x + alpha * std(x) * noise per sample (PNI-A-a); colored noise over the channels when rank is set."""

    def __init__(self, channels: int, colored_rank: int | None = None, alpha: float = 0.25) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(alpha))
        self.colored = ColoredNoise(channels, colored_rank) if colored_rank else None

    is_stochastic = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.colored is not None:
            n, c, h, w = x.shape
            noise = self.colored.sample(n * h * w).view(n, h, w, c).permute(0, 3, 1, 2)
        else:
            noise = torch.randn_like(x)
        return x + self.alpha * x.detach().std() * noise


class ResNet20(nn.Module):
    """CIFAR ResNet-20 (3 stages of 3 basic blocks, 16-32-64 channels), the CPNI base model.

    `noise`: None, "weights" (PNI-W / CPNI-W) or "activations" (PNI-A / CPNI-A);
    `colored_rank`: None for white noise, r for colored noise with covariance D + L^T L.
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, width: int = 16, noise: str | None = None, colored_rank: int | None = None
    ) -> None:
        super().__init__()
        if noise not in (None, "weights", "activations"):
            raise ValueError("noise is None, 'weights' or 'activations'")

        def conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Module:
            if noise == "weights":
                return NoisyConv2d(cin, cout, kernel, stride, colored_rank)
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)]
            if noise == "activations":
                layers.append(NoisyActivation(cout, colored_rank))
            return nn.Sequential(*layers)

        self.stem = nn.Sequential(conv(in_channels, width, 3, 1), nn.BatchNorm2d(width), nn.ReLU())
        blocks, cin = [], width
        for stage in range(3):
            cout = width * 2**stage
            for i in range(3):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(_Block(conv, cin, cout, stride))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class _Block(nn.Module):
    def __init__(self, conv, cin: int, cout: int, stride: int) -> None:  # noqa: ANN001
        super().__init__()
        self.body = nn.Sequential(conv(cin, cout, 3, stride), nn.BatchNorm2d(cout), nn.ReLU(), conv(cout, cout, 3, 1), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))
