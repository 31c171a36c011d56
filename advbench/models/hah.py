"""Hebbian/anti-Hebbian (HaH) blocks and HaH-VGG16 (dissertation Ch. 5).

A HaH block: conv with implicit weight normalization (eq. 5.1), ReLU, divisive normalization
(eq. 5.2), per-channel adaptive threshold keeping the top `keep` share of each channel's
activations per image (eq. 5.3). While training it also computes its HaH loss (eq. 5.4) on
the activations of a detached copy of its input, so the loss shapes this block's filters and
never reaches earlier layers (the "cheating" fix of §5.2.2).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class WeightNormConv2d(nn.Conv2d):
    """<w, x> / ||w||_2 for every filter: outputs are projections onto unit-norm filters."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norms = self.weight.flatten(1).norm(dim=1).clamp_min(1e-12)
        return self._conv_forward(x, self.weight, None) / norms.view(1, -1, 1, 1)


def divisive_normalization(y: torch.Tensor, sigma: float = 0.1, eps: float = 1e-8) -> torch.Tensor:
    """z_k(loc) = y_k(loc) / (sigma M_max + (1 - sigma) M(loc)), M = mean over channels (eq. 5.2)."""
    mean = y.mean(dim=1, keepdim=True)
    mean_max = mean.amax(dim=(2, 3), keepdim=True)
    return y / (sigma * mean_max + (1 - sigma) * mean + eps)


def channel_threshold(z: torch.Tensor, keep: float = 0.2) -> torch.Tensor:
    """Zero each channel's activations below its per-image (1 - keep) quantile (eq. 5.3)."""
    tau = torch.quantile(z.flatten(2), 1 - keep, dim=2).unsqueeze(-1).unsqueeze(-1)
    return torch.where(z >= tau, z, torch.zeros_like(z))


def hah_loss(y: torch.Tensor, top_k: int, anti_weight: float = 0.1) -> torch.Tensor:
    """Mean over locations of (mean of the top-K channels) - lambda (mean of the rest): to maximize."""
    n = y.shape[1]
    if not 0 < top_k < n:
        raise ValueError("HaH top_k must be between 1 and channels - 1")
    ranked = y.topk(n, dim=1).values
    top = ranked[:, :top_k].mean(dim=1)
    rest = ranked[:, top_k:].mean(dim=1)
    return (top - anti_weight * rest).mean()


class HaHBlock(nn.Module):
    def __init__(
        self,
        cin: int,
        cout: int,
        sigma: float = 0.1,
        keep: float = 0.2,
        top_fraction: float = 0.1,
        anti_weight: float = 0.1,
    ) -> None:
        super().__init__()
        self.conv = WeightNormConv2d(cin, cout, 3)
        self.sigma, self.keep, self.anti_weight = sigma, keep, anti_weight
        self.top_k = max(1, round(top_fraction * cout))
        self.loss: torch.Tensor | None = None  # set in training mode, read by the training recipe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))
        if self.training:
            self.loss = hah_loss(F.relu(self.conv(x.detach())), self.top_k, self.anti_weight)
        return channel_threshold(divisive_normalization(y, self.sigma), self.keep)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, keep={self.keep}, top_k={self.top_k}, anti_weight={self.anti_weight}"


VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGG16(nn.Module):
    """VGG16 for small images: weight-normalized convs, the first `hah_blocks` convs as HaH blocks,
    the rest conv-ReLU-BN; after stage i a 2x2 max-pool when strides[i] == 2 (the stride paper's
    s1-...-s5, 2-2-2-2-2 being the usual VGG16), then adaptive average pooling and one classifier.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 64,
        strides: Sequence[int] = (2, 2, 2, 2, 2),
        hah_blocks: int = 0,
        hah_alphas: Sequence[float] = (4.5e-3, 2.5e-3, 1.3e-3, 1e-3, 8e-4, 5e-4),
        sigma: float = 0.1,
    ) -> None:
        super().__init__()
        if len(strides) != 5 or hah_blocks > len(hah_alphas):
            raise ValueError("VGG16 needs 5 stage strides and one alpha per HaH block")
        layers: list[nn.Module] = []
        cin, index = in_channels, 0
        for stage, stride in zip(VGG16_STAGES, strides):
            for channels in stage:
                cout = channels * width // 64
                if index < hah_blocks:
                    layers.append(HaHBlock(cin, cout, sigma))
                else:
                    layers += [WeightNormConv2d(cin, cout, 3), nn.ReLU(), nn.BatchNorm2d(cout)]
                cin, index = cout, index + 1
            if stride == 2:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))  # ceil: 28x28 inputs survive 5 pools
        self.features = nn.Sequential(*layers)
        self.hah_alphas = list(hah_alphas[:hah_blocks])
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))

    def hah_objective(self) -> torch.Tensor:
        """sum over HaH blocks of alpha * L_block, from the last training forward (to subtract from the loss)."""
        blocks = [m for m in self.features if isinstance(m, HaHBlock)]
        return sum(
            (a * b.loss for a, b in zip(self.hah_alphas, blocks) if b.loss is not None),
            torch.zeros(()),
        )
