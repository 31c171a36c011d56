"""conv -> [KAP/KMP] -> [noise] -> BN: the place every per-conv defense hooks in.

Bashivan et al. §4.1: "KAP layers were always added immediately after the convolution
layer ... noise ... after each KAP operation (and after each convolution in the original
model architecture) during model training."
"""

from __future__ import annotations

from typing import TypedDict

import torch
from torch import nn

from advbench.models.kernel_pooling import KAPConv2d, KernelPool
from advbench.models.noise import GaussianNoise


class UnitOptions(TypedDict, total=False):
    """ConvUnit's options after the conv's own shape, as an architecture passes them to every unit."""

    kernel_pool: str | None
    pool_kernel: int
    pool_dims: int
    noise_sigma: float
    pool_stride: int


class ConvUnit(nn.Module):
    """conv -> [KAP/KMP] -> [noise] -> BN; the place every per-conv defense hooks in."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        kernel_pool: str | None = None,
        pool_kernel: int = 3,
        pool_dims: int = 2,
        noise_sigma: float = 0.0,
        pool_stride: int = 1,
    ) -> None:
        super().__init__()
        self.pool: nn.Module = nn.Identity()
        self.out_channels = (
            cout  # after kernel pooling: cout / K^2 where it does not overlap (S = K)
        )
        if kernel_pool == "avg":
            kap = KernelPool(cout, pool_kernel, pool_stride, "avg", pool_dims)
            self.conv: nn.Conv2d = KAPConv2d(cin, cout, kernel, stride, kap)
            self.out_channels = kap.out_channels
        else:
            self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
            if kernel_pool == "max":
                kmp = KernelPool(cout, pool_kernel, pool_stride, "max", pool_dims)
                self.pool, self.out_channels = kmp, kmp.out_channels
        self.noise = GaussianNoise(noise_sigma)
        self.bn = nn.BatchNorm2d(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.noise(self.pool(self.conv(x))))
