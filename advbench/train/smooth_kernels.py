"""Smooth-kernel regularizer (Wang et al., smooth-kernels §3).

R(w) = exp( sum over neighbouring spatial pairs (w_ij - w_hk)^2  -  sum w_ij^2 ), each pair
counted once, over the two spatial axes of a kernel. "Broadcast over channels" is read as:
R is computed for every 2D kernel slice w[o, i] and averaged over the slices of a layer
(summing inside the exp over all channels overflows: exp(~1e3) for a ResNet stage).
lambda * sum over conv layers of that mean is added to any loss; a negative lambda favours
high-frequency kernels (VH, TH, ...).
"""

from __future__ import annotations

import torch
from torch import nn

# Offsets of the neighbour pairs, each pair once: right, down (4-neighbourhood) and the two
# diagonals (8-neighbourhood).
PAIRS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}


def neighbour_penalty(weight: torch.Tensor, neighbourhood: int = 8) -> torch.Tensor:
    """R_0 of every 2D kernel slice: squared differences of spatial neighbours, shape weight.shape[:-2]."""
    total = weight.new_zeros(weight.shape[:-2])
    h, w = weight.shape[-2:]
    for dy, dx in PAIRS[neighbourhood]:
        a = weight[..., : h - dy, max(0, -dx) : w - max(0, dx)]
        b = weight[..., dy:, max(0, dx) : w + min(0, dx)]
        total = total + (a - b).pow(2).sum((-2, -1))
    return total


# A negative lambda rewards an unbounded exp(); capping the exponent keeps training finite
# (exp(20) = 4.9e8 is far above what any initialized or trained kernel reaches).
MAX_EXPONENT = 20.0


def smooth_kernel_regularizer(weight: torch.Tensor, neighbourhood: int = 8) -> torch.Tensor:
    """Mean over the 2D slices of a conv weight (out, in, kh, kw) of exp(R_0(w) - ||w||^2)."""
    exponent = neighbour_penalty(weight, neighbourhood) - weight.pow(2).sum((-2, -1))
    return torch.exp(exponent.clamp(max=MAX_EXPONENT)).mean()


def model_smoothness(model: nn.Module, neighbourhood: int = 8) -> torch.Tensor:
    """Sum of R(w) over every conv layer with a spatial kernel larger than 1x1."""
    terms = [
        smooth_kernel_regularizer(m.weight, neighbourhood)
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.weight.shape[-1] * m.weight.shape[-2] > 1
    ]
    return torch.stack(terms).sum() if terms else torch.zeros(())
