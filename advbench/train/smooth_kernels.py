"""Smooth-kernel regularizer (Wang et al., smooth-kernels §3).

R(w) = exp( sum over neighbouring spatial pairs (w_ij - w_hk)^2  -  sum w_ij^2 ), each pair
counted once, over the two spatial axes of every conv kernel, broadcast over channels.
lambda * R(w) is added to any loss; a negative lambda favours high-frequency kernels (VH, ...).
"""

from __future__ import annotations

import torch
from torch import nn

# Offsets of the neighbour pairs, each pair once: right, down (4-neighbourhood) and the two
# diagonals (8-neighbourhood).
PAIRS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}


def neighbour_penalty(weight: torch.Tensor, neighbourhood: int = 8) -> torch.Tensor:
    """Sum of squared differences between spatial neighbours, summed over channels: R_0(w)."""
    total = weight.new_zeros(())
    h, w = weight.shape[-2:]
    for dy, dx in PAIRS[neighbourhood]:
        a = weight[..., : h - dy, max(0, -dx) : w - max(0, dx)]
        b = weight[..., dy:, max(0, dx) : w + min(0, dx)]
        total = total + (a - b).pow(2).sum()
    return total


def smooth_kernel_regularizer(weight: torch.Tensor, neighbourhood: int = 8) -> torch.Tensor:
    """R(w) for one conv weight (out, in, kh, kw)."""
    return torch.exp(neighbour_penalty(weight, neighbourhood) - weight.pow(2).sum())


def model_smoothness(model: nn.Module, neighbourhood: int = 8) -> torch.Tensor:
    """Sum of R(w) over every conv layer with a spatial kernel larger than 1x1."""
    terms = [
        smooth_kernel_regularizer(m.weight, neighbourhood)
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.weight.shape[-1] * m.weight.shape[-2] > 1
    ]
    return torch.stack(terms).sum() if terms else torch.zeros(())
