"""Kernel average / max pooling (KAP / KMP): pooling along the channel ("kernel") axis.

Bashivan et al., "Kernel average pooling", §3.2 eq. 2 (1D) and App. A.1 Alg. 1 (2D sheet).
Padded positions carry zero weight in the mean, so a border channel averages only over
the neighbours that exist.

KAP is linear in the channels, so it is a fixed C_out x C matrix applied per pixel (a 1x1
conv), and after a bias-free conv it folds into that conv's weights (eq. 3): `KAPConv2d`
costs no more than the plain conv. KMP is not linear and pools explicitly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def channel_sheet(channels: int, dims: int = 2) -> tuple[int, int]:
    """rows x cols layout of the kernels: (C, 1) for 1D, the most square split for 2D (8x16 for 128)."""
    if dims == 1:
        return channels, 1
    rows = max(d for d in range(1, math.isqrt(channels) + 1) if channels % d == 0)
    return rows, channels // rows


def _pool_sheet(
    z: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], mode: str
) -> torch.Tensor:
    """Pool a (N, 1, rows, cols, pixels) tensor over its sheet axes with zero-weight padding.

    Padding is explicit (the sheet may be smaller than the kernel, e.g. 2 x 4 channels), and
    the mean divides by the number of real neighbours, not by K. Non-overlapping pooling
    (stride = K, the KAP paper's Fig. 4b) tiles the sheet and needs no padding.
    """
    kr, kc = kernel
    pr, pc = (0 if s == k else k // 2 for k, s in zip(kernel, stride))
    pad = (0, 0, pc, pc, pr, pr)
    k3, s3 = (kr, kc, 1), (*stride, 1)
    if mode == "max":
        return F.max_pool3d(F.pad(z, pad, value=float("-inf")), k3, s3)
    ones = torch.ones((1, 1, *z.shape[2:4], 1), dtype=z.dtype, device=z.device)
    return F.avg_pool3d(F.pad(z, pad), k3, s3) / F.avg_pool3d(F.pad(ones, pad), k3, s3)


class KernelPool(nn.Module):
    """Mean (KAP) or max (KMP) over K (1D) or K x K (2D) neighbouring kernels, stride S.

    Overlapping pooling (S < K) is centred, so K must be odd; non-overlapping pooling (S = K)
    takes any K whose sheet it tiles exactly, leaving C / K (1D) or C / K^2 (2D) channels.
    """

    matrix: torch.Tensor  # a buffer (averaging only), registered in __init__

    def __init__(
        self, channels: int, kernel_size: int = 3, stride: int = 1, mode: str = "avg", dims: int = 2
    ) -> None:
        super().__init__()
        if mode not in ("avg", "max") or dims not in (1, 2):
            raise ValueError("kernel pooling mode is avg or max, dims 1 or 2")
        self.channels, self.kernel_size, self.stride, self.mode, self.dims = (
            channels,
            kernel_size,
            stride,
            mode,
            dims,
        )
        self.sheet = channel_sheet(channels, dims)
        if stride == kernel_size:
            if any(side % kernel_size for side in self.sheet[:dims]):
                raise ValueError(
                    f"non-overlapping kernel pooling with K={kernel_size} needs a {self.sheet[0]} x {self.sheet[1]} kernel sheet divisible by K"
                )
        elif kernel_size % 2 != 1:
            raise ValueError("overlapping kernel pooling needs an odd kernel size")
        self._kernel = (kernel_size, kernel_size if dims == 2 else 1)
        self._stride = (stride, stride if dims == 2 else 1)
        if mode == "avg":
            self.register_buffer("matrix", self.pool_matrix(), persistent=False)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        z = _pool_sheet(x.reshape(n, 1, *self.sheet, h * w), self._kernel, self._stride, self.mode)
        return z.reshape(n, -1, h, w)

    def pool_matrix(self) -> torch.Tensor:
        """The C_out x C averaging matrix: row i holds 1/count on kernel i's sheet neighbours."""
        eye = torch.eye(self.channels).view(self.channels, self.channels, 1, 1)
        return self._pool(eye).flatten(1).t().contiguous()

    @property
    def out_channels(self) -> int:
        rows, cols = self.sheet
        return -(-rows // self._stride[0]) * -(-cols // self._stride[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "max":
            return self._pool(x)
        return F.conv2d(x, self.matrix.unsqueeze(-1).unsqueeze(-1))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, sheet={self.sheet}, kernel_size={self.kernel_size}, stride={self.stride}, mode={self.mode}"


class KAPConv2d(nn.Conv2d):
    """A bias-free conv followed by KAP, computed as one conv with kernel-averaged weights (eq. 3)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, pool: KernelPool) -> None:
        super().__init__(cin, cout, kernel, stride, kernel // 2, bias=False)
        if pool.mode != "avg":
            raise ValueError("only average pooling folds into the conv weights")
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.einsum("oc,cikl->oikl", self.pool.matrix, self.weight)
        return self._conv_forward(x, weight, None)
