"""Deterministic subsets of a dataset: the same (n, seed, balanced) always picks the same images."""

from __future__ import annotations

import hashlib

import torch

from advbench.core.errors import UsageError


def select_indices(
    labels: torch.Tensor, n: int | None, seed: int = 0, balanced: bool = False
) -> torch.Tensor:
    """Sorted indices of n samples drawn by a seeded permutation; balanced takes n/classes per class."""
    total = len(labels)
    if n is not None and n <= 0:
        raise UsageError(f"--n must be positive, got {n}")
    if n is None or (n >= total and not balanced):
        return torch.arange(total)
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    if not balanced:
        return order[:n].sort().values
    classes = labels.unique()
    per_class, remainder = divmod(n, len(classes))
    shuffled = labels[order]
    # Rank of each shuffled sample within its class, so one comparison picks the first k per class.
    onehot = shuffled.view(-1, 1) == classes.view(1, -1)
    rank = (onehot.cumsum(0) - 1)[onehot]
    class_pos = onehot.int().argmax(1)
    quota = torch.full((len(classes),), per_class)
    quota[:remainder] += 1
    available = onehot.sum(0)
    if bool((available < quota).any()):
        raise UsageError(
            f"--balanced --n {n}: some class has fewer than {int(quota.max())} samples"
        )
    return order[rank < quota[class_pos]].sort().values


def indices_hash(indices: torch.Tensor) -> str:
    return hashlib.sha256(indices.to(torch.int64).numpy().tobytes()).hexdigest()[:16]
