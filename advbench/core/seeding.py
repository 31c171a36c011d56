"""Randomness that depends only on (seed, sample index, stream), never on batching.

Attacks draw their random starts from a counter-based hash evaluated on the device, so a
sample's noise is the same whatever batch, shard or resume it runs in, and no Python loop
over samples is needed.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TypeVar

import torch

_MASK32 = 0xFFFFFFFF
_Int = TypeVar("_Int", int, torch.Tensor)  # the hash is the same arithmetic on either


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts (run seed, names, indices)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _hash32(x: _Int) -> _Int:
    # "lowbias32" integer hash (Chris Wellons); int64 keeps the 32-bit products exact after masking.
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def sample_uniform(
    seed: int,
    indices: torch.Tensor,
    shape: tuple[int, ...],
    stream: int = 0,
    device: torch.device | None = None,
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
    seed: int,
    indices: torch.Tensor,
    shape: tuple[int, ...],
    stream: int = 0,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Standard normal draws per sample index (Box-Muller on two hashed streams)."""
    u1 = sample_uniform(seed, indices, shape, 2 * stream, device)
    u2 = sample_uniform(seed, indices, shape, 2 * stream + 1, device)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * torch.pi * u2)


# Per-row draws keyed by a tensor of row keys rather than dataset indices. A model random at
# inference sees sub-batches without indices, so its rows are keyed by their content
# (`row_keys`); `normal_rows`/`uniform_rows` turn any (N,) int64 keys into draws, each row a
# function of its key and the stream only, on the keys' device, with no loop over rows (on the
# CPU the rows are processed in cache-sized blocks, which is 2-3x faster than whole tensors).

_GOLDEN = 0x9E3779B1
_CPU_BLOCK = 1 << 17  # elements per block on the CPU


def _hash32_(x: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """`_hash32` in place on x (any int64 values), with `tmp` (same shape) as scratch space."""
    x.bitwise_and_(_MASK32)
    for mult, shift in ((0x7FEB352D, 16), (0x846CA68B, 15)):
        x.bitwise_xor_(torch.bitwise_right_shift(x, shift, out=tmp))
        x.mul_(mult).bitwise_and_(_MASK32)  # may wrap past 2^63; the low 32 bits stay exact
    return x.bitwise_xor_(torch.bitwise_right_shift(x, 16, out=tmp))


def mix_keys(keys: torch.Tensor, *parts: int | torch.Tensor) -> torch.Tensor:
    """32-bit keys (int64 tensor shaped like `keys`) hashing `keys` (any int64) with each part in turn.

    A part is an int or a tensor broadcastable to `keys`; 64-bit values enter with both halves.
    """
    return mix_parts(hash_keys(keys), *parts)


def _part_hash(p: _Int) -> _Int:
    return _hash32(((p & _MASK32) * _GOLDEN) ^ ((p >> 32) & _MASK32))


def hash_keys(keys: torch.Tensor) -> torch.Tensor:
    """`mix_keys(keys)`: the 32-bit hash of int64 keys, both halves, before any part is mixed in.
    A caller mixing many parts into the same keys (a random model's layers) hashes them once."""
    keys = keys.to(torch.int64)
    return _hash32((keys & _MASK32) ^ _hash32((keys >> 32) & _MASK32) * _GOLDEN)


def mix_parts(hashes: torch.Tensor, *parts: int | torch.Tensor) -> torch.Tensor:
    """`hashes` (32-bit, from `hash_keys`) with each part mixed in turn, as `mix_keys` does."""
    for part in parts:
        # An int part is hashed in Python: the same arithmetic (the low 32 bits of each product
        # are exact either way), without a round of tensor operations per layer and pass.
        mixed = (
            _part_hash(part)
            if isinstance(part, int)
            else _part_hash(part.to(device=hashes.device, dtype=torch.int64))
        )
        hashes = _hash32(hashes ^ mixed)
    return hashes


def row_keys(x: torch.Tensor) -> torch.Tensor:
    """A 63-bit key (int64, shape (N,)) per row of x, from the exact bits of its values.

    Equal rows get equal keys; a change of any element's float32 bits changes the key (but for a
    ~2^-63 chance). Each element's position is hashed in before a per-row sum, in one vectorized
    pass over x.
    """
    bits = (
        x.detach().to(torch.float32).contiguous().view(len(x), -1).view(torch.int32).to(torch.int64)
    )
    pos = torch.arange(bits.shape[1], device=x.device, dtype=torch.int64)
    halves = []
    for salt in (0x243F6A88, 0x85A308D3):
        h = bits ^ _hash32(pos * _GOLDEN + salt)
        _hash32_(h, torch.empty_like(h))
        halves.append(_hash32(h.sum(dim=1) ^ salt))  # a sum of < 2^32 per element: exact in int64
    return ((halves[0] & 0x7FFFFFFF) << 32) | halves[1]


def uniform_rows(
    keys: torch.Tensor,
    shape: tuple[int, ...],
    stream: int = 0,
    key_hashes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Uniform (0,1) float32 of shape (N, *shape), row i a function of (keys[i], stream) only.
    `key_hashes`: `hash_keys(keys)`, when the caller has it."""
    return _draw_rows(_row_hashes(keys, stream, key_hashes), _numel(shape), normal=False).view(
        len(keys), *shape
    )


def normal_rows(
    keys: torch.Tensor,
    shape: tuple[int, ...],
    stream: int = 0,
    key_hashes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Standard normal float32 of shape (N, *shape), row i a function of (keys[i], stream) only.
    `key_hashes`: `hash_keys(keys)`, when the caller has it.

    Box-Muller on one hashed uniform per element: each (u1, u2) pair gives a cosine and a sine draw.
    """
    return _draw_rows(_row_hashes(keys, stream, key_hashes), _numel(shape), normal=True).view(
        len(keys), *shape
    )


def _row_hashes(keys: torch.Tensor, stream: int, key_hashes: torch.Tensor | None) -> torch.Tensor:
    """k_i = hash(key_i, stream): each row's key for the stream's draws."""
    return mix_parts(hash_keys(keys) if key_hashes is None else key_hashes, stream)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


@functools.lru_cache(maxsize=64)
def _position_hashes(width: int, device: torch.device) -> torch.Tensor:
    """(1, width): hash(j) for the elements of a row. Cached: a random model's layers draw rows
    of the same few widths at every pass, and for a small batch hashing the positions again cost
    as much as the rows' own draws."""
    return _hash32(
        torch.arange(width, device=device, dtype=torch.int64) * _GOLDEN + 0x7F4A7C15
    ).view(1, -1)


def _draw_rows(row_hashes: torch.Tensor, n: int, normal: bool) -> torch.Tensor:
    # Element j of row i hashes hash(j) ^ k_i, with k_i = hash(key_i, stream) (`row_hashes`):
    # hashing the position first keeps rows with nearby keys from being shifted copies of each other.
    device = row_hashes.device
    rows_n = len(row_hashes)
    width = 2 * ((n + 1) // 2) if normal else n
    k = row_hashes.view(-1, 1)
    pos = _position_hashes(width, device)
    out = torch.empty(rows_n, n, device=device, dtype=torch.float32)
    block = max(1, _CPU_BLOCK // max(width, 1)) if device.type == "cpu" else max(1, rows_n)
    h_buf = torch.empty(min(block, rows_n), width, device=device, dtype=torch.int64)
    tmp_buf, u_buf = (
        torch.empty_like(h_buf),
        torch.empty(h_buf.shape, device=device, dtype=torch.float32),
    )
    for start in range(
        0, rows_n, block
    ):  # blocks of rows, for the cache; one block on accelerators
        rows = slice(start, start + block)
        h = torch.bitwise_xor(pos, k[rows], out=h_buf[: len(k[rows])])
        _hash32_(h, tmp_buf[: len(h)])
        u = u_buf[: len(h)].copy_(h.bitwise_right_shift_(8)).add_(0.5).div_(float(1 << 24))
        if not normal:
            out[rows] = u
            continue
        half = width // 2
        radius = torch.log(u[:, :half]).mul_(-2.0).sqrt_()
        angle = u[:, half:].mul_(2.0 * torch.pi)
        out[rows, :half] = radius * torch.cos(angle)
        out[rows, half:] = radius.mul_(torch.sin(angle))[:, : n - half]
    return out
