"""Randomness that depends only on (seed, sample index, stream), never on batching.

Attacks draw their random starts from a counter-based hash evaluated on the device, so a
sample's noise is the same whatever batch, shard or resume it runs in, and no Python loop
over samples is needed.
"""

from __future__ import annotations

import hashlib

import torch

_MASK32 = 0xFFFFFFFF


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts (run seed, names, indices)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _hash32(x: torch.Tensor) -> torch.Tensor:
    # "lowbias32" integer hash (Chris Wellons); int64 keeps the 32-bit products exact after masking.
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def sample_uniform(
    seed: int, indices: torch.Tensor, shape: tuple[int, ...], stream: int = 0, device: torch.device | None = None
) -> torch.Tensor:
    """Uniform [0,1) tensor of shape (len(indices), *shape), each row a function of its index only."""
    device = device or indices.device
    n_elem = 1
    for s in shape:
        n_elem *= s
    idx = indices.to(device=device, dtype=torch.int64).view(-1, 1)
    pos = torch.arange(n_elem, device=device, dtype=torch.int64).view(1, -1)
    key = _hash32(torch.tensor(seed, device=device, dtype=torch.int64) * 0x9E3779B1 + stream)
    h = _hash32(_hash32(idx ^ key) * 0x85EBCA6B + pos)
    h = _hash32(h ^ key)
    u = ((h >> 8).to(torch.float32) + 0.5) / float(1 << 24)
    return u.view(len(indices), *shape)


def sample_normal(
    seed: int, indices: torch.Tensor, shape: tuple[int, ...], stream: int = 0, device: torch.device | None = None
) -> torch.Tensor:
    """Standard normal draws per sample index (Box-Muller on two hashed streams)."""
    u1 = sample_uniform(seed, indices, shape, 2 * stream, device)
    u2 = sample_uniform(seed, indices, shape, 2 * stream + 1, device)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * torch.pi * u2)
