"""ResNet18 for small images, with configurable width, stage strides, kernel pooling and noise."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from advbench.models.conv_unit import ConvUnit, UnitOptions
from advbench.models.noise import GaussianNoise
from advbench.models.upsample import InputUpsample


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, unit: UnitOptions) -> None:
        super().__init__()
        self.unit1 = ConvUnit(cin, cout, 3, stride, **unit)
        self.unit2 = ConvUnit(cout, cout, 3, 1, **unit)
        self.relu = nn.ReLU()
        self.shortcut = (
            ConvUnit(cin, cout, 1, stride, **unit) if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.unit1(x))
        return self.relu(self.unit2(out) + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet18 (3x3 stem, no max-pool) for any input size and channel count.

    `strides` is the stride of each stage's first conv (the stride paper's s1-s2-s3-s4),
    `upsample` enlarges the input first (§IV-A), `head_pool` picks average or max pooling
    before the classifier (§V-C).
    """

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
        upsample: int = 1,
        upsample_mode: str = "nearest",
    ) -> None:
        super().__init__()
        if head_pool not in ("avg", "max"):
            raise ValueError("head_pool is avg or max")
        self.upsample = InputUpsample(upsample, upsample_mode)
        unit = UnitOptions(
            kernel_pool=kernel_pool,
            pool_kernel=pool_kernel,
            pool_dims=pool_dims,
            noise_sigma=noise_sigma,
        )
        self.input_noise = GaussianNoise(noise_sigma)
        self.stem = ConvUnit(in_channels, width, 3, 1, **unit)
        self.relu = nn.ReLU()
        stages, cin = [], width
        for i, stride in enumerate(strides):
            cout = width * 2**i
            stages.append(
                nn.Sequential(BasicBlock(cin, cout, stride, unit), BasicBlock(cout, cout, 1, unit))
            )
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head_pool = nn.AdaptiveAvgPool2d(1) if head_pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head_pool(self.features(x)).flatten(1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv stage's feature map, before the pooling head."""
        out = self.relu(self.stem(self.input_noise(self.upsample(x))))
        return self.stages(out)
