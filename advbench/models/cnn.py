"""Shallow CNNs with 1-3 conv layers (KAP paper §4.2: conv-BN-ReLU, KAP right after each conv).

The paper gives depth, not widths or strides; ours: `channels` kernels per layer (64 makes an
8x8 kernel sheet), 3x3 convs, stride 1 in the first layer and 2 after, average pooling to a
4x4 map and one linear classifier (a global average would leave a 1-layer net almost blind
to where edges are). Fig. 4b's nets pool without overlap (`pool_stride` = `pool_kernel` = K):
each layer then passes C / K^2 ensembles on, so `channels` = 16 K^2 keeps 16 of them.
"""

from __future__ import annotations

import torch
from torch import nn

from advbench.models.conv_unit import ConvUnit
from advbench.models.noise import GaussianNoise


class ShallowCNN(nn.Module):
    def __init__(
        self,
        depth: int = 3,
        num_classes: int = 10,
        in_channels: int = 3,
        channels: int = 64,
        kernel_pool: str | None = None,
        pool_kernel: int = 3,
        pool_dims: int = 2,
        noise_sigma: float = 0.0,
        pool_stride: int = 1,
    ) -> None:
        super().__init__()
        if not 1 <= depth <= 3:
            raise ValueError("ShallowCNN depth is 1, 2 or 3")
        self.input_noise = GaussianNoise(noise_sigma)
        layers: list[nn.Module] = []
        cin = in_channels
        for i in range(depth):
            unit = ConvUnit(
                cin,
                channels,
                3,
                1 if i == 0 else 2,
                kernel_pool,
                pool_kernel,
                pool_dims,
                noise_sigma,
                pool_stride,
            )
            layers += [unit, nn.ReLU()]
            cin = unit.out_channels
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(cin * 16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.body(self.input_noise(x))).flatten(1))
