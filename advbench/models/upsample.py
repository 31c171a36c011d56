"""Input upsampling (stride paper §IV-A): enlarge every feature map by interpolating the input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InputUpsample(nn.Module):
    """Scale the image by `factor` with nearest or bilinear interpolation."""

    def __init__(self, factor: int = 2, mode: str = "nearest") -> None:
        super().__init__()
        if factor < 1 or mode not in ("nearest", "bilinear"):
            raise ValueError("upsampling needs factor >= 1 and mode nearest or bilinear")
        self.factor, self.mode = factor, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor == 1:
            return x
        align = False if self.mode == "bilinear" else None
        return F.interpolate(x, scale_factor=self.factor, mode=self.mode, align_corners=align)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, mode={self.mode}"
