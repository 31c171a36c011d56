"""Small tensor helpers shared across layers."""

from __future__ import annotations

import torch


def per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample vector shaped to broadcast against the batch `like` (N -> N x 1 x 1 ...)."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def partition(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices where `mask`, indices where not), each in order, for one host sync (the count).

    Boolean-mask indexing syncs once per use (`x[mask]`, `x[~mask]`, `mask.any()` each wait for
    the device); attack loops split their active set every step, so they read the count once
    and index with the two halves of a stable sort instead."""
    order = torch.argsort(mask.to(torch.uint8), stable=True)  # rows where not mask come first
    kept = len(mask) - int(mask.sum())
    return order[kept:], order[:kept]
