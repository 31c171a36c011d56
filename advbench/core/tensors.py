"""Small tensor helpers shared across layers."""

from __future__ import annotations

import torch


def per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample vector shaped to broadcast against the batch `like` (N -> N x 1 x 1 ...)."""
    return v.view(-1, *([1] * (like.dim() - 1)))
