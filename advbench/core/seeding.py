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


def _as_int32(x: int) -> int:
    """The low 32 bits of x as a signed 32-bit value (two's complement)."""
    return (x & _MASK32) - ((x & 0x80000000) << 1)


def _hash32_int32_(x: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """`_hash32` in place on an int32 tensor holding 32-bit values, `tmp` (same shape) as scratch.

    The same bits as the int64 version at half the memory traffic and without the masks after
    each product (about 3x faster on the CPU): int32 products wrap to their low 32 bits, and the
    shifts, which sign-extend in int32, are masked back to logical shifts.
    """
    for mult, shift in ((0x7FEB352D, 16), (0x846CA68B, 15)):
        torch.bitwise_right_shift(x, shift, out=tmp).bitwise_and_((1 << (32 - shift)) - 1)
        x.bitwise_xor_(tmp).mul_(_as_int32(mult))
    torch.bitwise_right_shift(x, 16, out=tmp).bitwise_and_(0xFFFF)
    return x.bitwise_xor_(tmp)


def mix_keys(keys: torch.Tensor, *parts: int | torch.Tensor) -> torch.Tensor:
    """32-bit keys (int64 tensor shaped like `keys`) hashing `keys` (any int64) with each part in turn.

    A part is an int or a tensor broadcastable to `keys`; 64-bit values enter with both halves.
    """
    return mix_parts(hash_keys(keys), *parts)


def _part_hash(p: _Int) -> _Int:
    return _hash32(((p & _MASK32) * _GOLDEN) ^ ((p >> 32) & _MASK32))


@functools.lru_cache(maxsize=4096)
def _stream_hash(stream: int) -> int:
    """`_part_hash` of an int stream, cached: a random model's layers mix the same streams in at
    every pass."""
    return _part_hash(stream)


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
    halves = []
    for salt in (0x243F6A88, 0x85A308D3):
        h = bits ^ _salted_positions(bits.shape[1], salt, x.device)
        _hash32_(h, torch.empty_like(h))
        halves.append(_hash32(h.sum(dim=1) ^ salt))  # a sum of < 2^32 per element: exact in int64
    return ((halves[0] & 0x7FFFFFFF) << 32) | halves[1]


@functools.lru_cache(maxsize=64)
def _salted_positions(width: int, salt: int, device: torch.device) -> torch.Tensor:
    """`row_keys`' hash of each position with the salt, cached: inputs of one size at every pass."""
    return _hash32(torch.arange(width, device=device, dtype=torch.int64) * _GOLDEN + salt)


def uniform_rows(keys: torch.Tensor, shape: tuple[int, ...], stream: int = 0) -> torch.Tensor:
    """Uniform (0,1) float32 of shape (N, *shape), row i a function of (keys[i], stream) only."""
    return uniform_from_hashes(stream_hashes(hash_keys(keys), (stream,))[0], shape)


def normal_rows(keys: torch.Tensor, shape: tuple[int, ...], stream: int = 0) -> torch.Tensor:
    """Standard normal float32 of shape (N, *shape), row i a function of (keys[i], stream) only.

    Box-Muller on one hashed uniform per element: each (u1, u2) pair gives a cosine and a sine draw.
    """
    return normal_from_hashes(stream_hashes(hash_keys(keys), (stream,))[0], shape)


def stream_hashes(key_hashes: torch.Tensor, streams: tuple[int, ...]) -> torch.Tensor:
    """(len(streams), N): the rows' hashes for each stream, `mix_parts(key_hashes, stream)`, in one
    batched hash. A random model's layers each draw from their own stream at every pass; hashing
    all of them at once saves a round of small tensor operations per layer."""
    parts = torch.tensor(
        [_stream_hash(int(stream)) for stream in streams],
        dtype=torch.int64,
        device=key_hashes.device,
    )
    return _hash32(key_hashes.view(1, -1) ^ parts.view(-1, 1))


def uniform_from_hashes(row_hashes: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """`uniform_rows` from the rows' hashes for the stream (a row of `stream_hashes`)."""
    return _draw_rows(row_hashes, _numel(shape), normal=False).view(len(row_hashes), *shape)


def normal_from_hashes(row_hashes: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """`normal_rows` from the rows' hashes for the stream (a row of `stream_hashes`)."""
    return _draw_rows(row_hashes, _numel(shape), normal=True).view(len(row_hashes), *shape)


# Above this many elements, `normal_from_hashes_many` is not worth its memory: the draws are large
# enough for per-draw overheads not to matter, and drawing them one at a time keeps one in memory.
BATCHED_DRAW_LIMIT = 1 << 21


def normal_from_hashes_many(
    row_hashes: torch.Tensor, shapes: tuple[tuple[int, ...], ...]
) -> list[torch.Tensor]:
    """`[normal_from_hashes(row_hashes[i], shapes[i]) for i ...]`, the same values, with the
    integer work of all the draws done in one pass over one buffer. A random model's layers each
    draw a small tensor per forward pass; at a small batch, the dozens of small operations per
    draw cost more than the arithmetic. `row_hashes`: (len(shapes), N)."""
    rows_n, device = row_hashes.shape[1], row_hashes.device
    sizes = [_numel(shape) for shape in shapes]
    widths = [2 * ((n + 1) // 2) for n in sizes]
    h = torch.empty(rows_n * sum(widths), device=device, dtype=torch.int32)
    start = 0
    # Segment (draw i, row r) of the buffer is that row's draw: hash(j) ^ k_ir, as `_draw_rows`.
    for width, k in zip(widths, row_hashes.to(torch.int32)):
        segment = h[start : start + rows_n * width].view(rows_n, width)
        torch.bitwise_xor(_position_hashes(width, device), k.view(-1, 1), out=segment)
        start += rows_n * width
    u = torch.empty(len(h), device=device, dtype=torch.float32)
    chunk = _CPU_BLOCK if device.type == "cpu" else len(h)  # cache-sized on the CPU
    tmp = torch.empty(min(chunk, len(h)), device=device, dtype=torch.int32)
    for at in range(0, len(h), chunk):
        hashed = _hash32_int32_(h[at : at + chunk], tmp[: len(h[at : at + chunk])])
        _unit_floats(hashed, u[at : at + chunk])
    draws, start = [], 0
    for n, width, shape in zip(sizes, widths, shapes):
        rows = u[start : start + rows_n * width].view(rows_n, width)
        draws.append(_box_muller_(rows, n).view(rows_n, *shape))
        start += rows_n * width
    return draws


def _unit_floats(h: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Uniform (0,1) float32 from 32-bit hashes (int32), their top 24 bits, into `out` if given;
    h is overwritten."""
    top = h.bitwise_right_shift_(8).bitwise_and_(0xFFFFFF)
    u = top.to(torch.float32) if out is None else out.copy_(top)
    return u.add_(0.5).div_(1 << 24)


def _box_muller_(u: torch.Tensor, n: int) -> torch.Tensor:
    """Normal draws (rows, n) from uniforms u (rows, width), in u's memory: the first half of each
    row gives the radii, the second the angles; each pair a cosine and a sine draw."""
    half = u.shape[1] // 2
    # log, cos and sin run on (rows, half) views whatever the caller: their vectorized and scalar
    # code paths may round differently, so the rows' layout must be the same for the same bits.
    radius = torch.log(u[:, :half]).mul_(-2.0).sqrt_()
    angle = u[:, half:].mul_(2.0 * torch.pi)
    torch.mul(radius, torch.cos(angle), out=u[:, :half])
    angle.sin_().mul_(radius)
    return u if n == u.shape[1] else u[:, :n]


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
    positions = torch.arange(width, device=device, dtype=torch.int64)
    return _hash32(positions * _GOLDEN + 0x7F4A7C15).to(torch.int32).view(1, -1)  # bits kept


def _draw_rows(row_hashes: torch.Tensor, n: int, normal: bool) -> torch.Tensor:
    # Element j of row i hashes hash(j) ^ k_i, with k_i = hash(key_i, stream) (`row_hashes`):
    # hashing the position first keeps rows with nearby keys from being shifted copies of each other.
    device = row_hashes.device
    rows_n = len(row_hashes)
    if rows_n == 0:
        return torch.empty(0, n, device=device, dtype=torch.float32)
    width = 2 * ((n + 1) // 2) if normal else n
    # 32-bit values: the cast to int32 keeps their bits (`_hash32_int32_`).
    k = row_hashes.to(torch.int32).view(-1, 1)
    pos = _position_hashes(width, device)
    block = max(1, _CPU_BLOCK // max(width, 1)) if device.type == "cpu" else max(1, rows_n)
    h_buf = torch.empty(min(block, rows_n), width, device=device, dtype=torch.int32)
    tmp_buf = torch.empty_like(h_buf)
    out = None if rows_n <= block else torch.empty(rows_n, n, device=device, dtype=torch.float32)
    for start in range(0, rows_n, block):  # blocks of rows, for the cache; one on accelerators
        stop = min(start + block, rows_n)
        h = torch.bitwise_xor(pos, k[start:stop], out=h_buf[: stop - start])
        u = _unit_floats(_hash32_int32_(h, tmp_buf[: stop - start]))
        draws = _box_muller_(u, n) if normal else u
        if out is None:
            return draws
        out[start:stop] = draws
    assert out is not None
    return out
