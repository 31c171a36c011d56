"""ResNet18 for small images, with configurable width, stage strides, kernel pooling and noise.

Each conv may be followed by kernel average/max pooling (KAP/KMP) and a training-time
Gaussian noise layer, as in Bashivan et al. §4.1: "KAP layers were always added immediately
after the convolution layer ... noise ... after each KAP (and after each convolution in the
original model)".
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from advbench.models.kernel_pooling import KAPConv2d, KernelPool
from advbench.models.noise import GaussianNoise


class ConvUnit(nn.Module):
    """conv -> [KAP/KMP] -> [noise] -> BN; the place every per-conv defense hooks in."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        kernel_pool: str | None,
        pool_kernel: int,
        pool_dims: int,
        noise_sigma: float,
    ) -> None:
        super().__init__()
        self.pool: nn.Module = nn.Identity()
        if kernel_pool == "avg":
            self.conv: nn.Conv2d = KAPConv2d(cin, cout, kernel, stride, KernelPool(cout, pool_kernel, 1, "avg", pool_dims))
        else:
            self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
            if kernel_pool == "max":
                self.pool = KernelPool(cout, pool_kernel, 1, "max", pool_dims)
        self.noise = GaussianNoise(noise_sigma)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.noise(self.pool(self.conv(x))))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, **unit: object) -> None:
        super().__init__()
        self.unit1 = ConvUnit(cin, cout, 3, stride, **unit)  # type: ignore[arg-type]
        self.unit2 = ConvUnit(cout, cout, 3, 1, **unit)  # type: ignore[arg-type]
        self.relu = nn.ReLU()
        self.shortcut = ConvUnit(cin, cout, 1, stride, **unit) if stride != 1 or cin != cout else nn.Identity()  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.unit1(x))
        return self.relu(self.unit2(out) + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet18 (3x3 stem, no max-pool) for any input size and channel count."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 64,
        strides: Sequence[int] = (1, 2, 2, 2),
        kernel_pool: str | None = None,
        pool_kernel: int = 3,
        pool_dims: int = 2,
        noise_sigma: float = 0.0,
        head_pool: str = "avg",
    ) -> None:
        super().__init__()
        unit = dict(kernel_pool=kernel_pool, pool_kernel=pool_kernel, pool_dims=pool_dims, noise_sigma=noise_sigma)
        self.input_noise = GaussianNoise(noise_sigma)
        self.stem = ConvUnit(in_channels, width, 3, 1, **unit)  # type: ignore[arg-type]
        self.relu = nn.ReLU()
        stages, cin = [], width
        for i, stride in enumerate(strides):
            cout = width * 2**i
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride, **unit), BasicBlock(cout, cout, 1, **unit)))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head_pool = nn.AdaptiveAvgPool2d(1) if head_pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.stem(self.input_noise(x)))
        out = self.stages(out)
        return self.fc(self.head_pool(out).flatten(1))
