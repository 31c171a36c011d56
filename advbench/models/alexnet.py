"""AlexNet for small images with the stride paper's configurable downsampling (App. B, Fig. 9).

Five 3x3 convs (64-192-384-256-256 at width 64); the four downsamplings s1-s2-s3-s4 are the
first conv's stride and the 2x2 max-pools after conv1, conv2 and conv5 (2-2-2-2 is the usual
net, 1-1-2-2 the paper's modification). Adaptive average pooling follows the conv part, then
the long fully connected chain that the paper notes still benefits from larger feature maps.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

_CHANNELS = (64, 192, 384, 256, 256)


class AlexNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 64,
        strides: Sequence[int] = (2, 2, 2, 2),
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if len(strides) != 4 or any(s not in (1, 2) for s in strides):
            raise ValueError("AlexNet takes four strides, each 1 or 2")
        c = [ch * width // 64 for ch in _CHANNELS]
        pool = [nn.MaxPool2d(2, ceil_mode=True) if s == 2 else nn.Identity() for s in strides[1:]]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 3, strides[0], 1),
            nn.ReLU(),
            pool[0],
            nn.Conv2d(c[0], c[1], 3, 1, 1),
            nn.ReLU(),
            pool[1],
            nn.Conv2d(c[1], c[2], 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(c[2], c[3], 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(c[3], c[4], 3, 1, 1),
            nn.ReLU(),
            pool[2],
        )
        hidden = 64 * width
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c[4], hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1))
