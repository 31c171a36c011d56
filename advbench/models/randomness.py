"""Per-sample randomness for models random at inference.

Attacks hand the model sub-batches (`x[active]`) without dataset indices, so the wrapper keys
each input row by its content: a 63-bit hash of its exact values (`core.seeding.row_keys`),
together with how many times that same input has been through the model since the last
`reseed` (its occurrence count), and the seed. A noise layer's draw for a row is a function of
that key, the layer's stream (its name in the network) and how often the layer has drawn in this
forward pass. So:

- a sample gets the same noise in a batch of 1, 5 or 64, in any order, in a resumed run;
- forwarding the same input again draws fresh noise (occurrence 1, 2, ...), which EOT needs;
- all of it is batched tensor work on the input's device.

The occurrence count is per input, not a counter per model: a model-wide counter would make a
sample's draws depend on how many forward passes its batch-mates caused before it (an ensemble
skips an attack when a batch has nothing left to attack; batches of 5 and 12 make different
numbers of calls). It is exact (a sorted table of the inputs seen since `reseed`), so it grows
with the distinct inputs forwarded; `RobustModel.reseed` clears it, and an engine that reseeds
before each batch keeps it to one batch's inputs. The one input the scheme cannot tell apart is
an exact duplicate: two identical images in one run share the occurrence count.

Layers opt in with a `draws: DrawScope | None = None` attribute, which the wrapper sets for the
duration of a forward pass. When it is None (the bare network, the training wrapper) or the layer
is training, they draw from torch's RNG as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from advbench.core.seeding import (
    BATCHED_DRAW_LIMIT,
    derive_seed,
    hash_keys,
    mix_keys,
    normal_from_hashes,
    normal_from_hashes_many,
    row_keys,
    stream_hashes,
    uniform_from_hashes,
)


class InputHistory:
    """How many times each input (by 63-bit key) has been forwarded: the sorted keys of every
    forwarded row, repeats kept, on the device.

    Keeping repeats makes every size known on the host (the table grows by the batch), so a
    lookup and a merge are sorts and binary searches with no host sync, where a table of distinct
    keys would have to read how many of a batch's keys are new."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None  # sorted int64, one entry per forwarded row

    def clear(self) -> None:
        self.keys = None

    def __len__(self) -> int:
        return 0 if self.keys is None else len(self.keys)

    def occurrences(self, keys: torch.Tensor) -> torch.Tensor:
        """For each row, the number of earlier forwards of the same input (earlier rows of this batch
        included), then record this batch."""
        device = keys.device
        table = (
            torch.empty(0, dtype=torch.int64, device=device)
            if self.keys is None
            else self.keys.to(device)
        )
        batch, order = torch.sort(keys, stable=True)
        # Earlier forwards: the table's entries equal to the key.
        prior = torch.searchsorted(table, batch, right=True) - torch.searchsorted(table, batch)
        # Repeats within this batch, in row order: the row's rank among its equal keys.
        rank = torch.arange(len(keys), device=device) - torch.searchsorted(batch, batch)
        result = torch.empty_like(keys)
        result[order] = prior + rank
        # Merge the batch into the table: each new key goes before the equal entries, each old
        # entry moves back by the number of new keys placed before it.
        before = torch.searchsorted(table, batch)
        at_new = before + torch.arange(len(batch), device=device)
        at_old = torch.arange(len(table), device=device)
        at_old = at_old + torch.searchsorted(before, at_old, right=True)
        merged = torch.empty(len(table) + len(batch), dtype=torch.int64, device=device)
        merged[at_new] = batch
        merged[at_old] = table
        self.keys = merged
        return result


class DrawScope:
    """What the noise layers of one forward pass draw from: a 32-bit key per input row.

    `normal_shapes`: the per-row shape of the normal draw of each layer that always draws the same
    (`fixed_normal_shape`); at a small batch their first draws of the pass are made together.
    """

    def __init__(
        self,
        keys: torch.Tensor,
        streams: dict[int, int],
        normal_shapes: dict[int, tuple[int, ...]] | None = None,
    ) -> None:
        self._streams = streams
        self._normal_shapes = normal_shapes or {}
        self._calls: dict[int, int] = {}
        self.keys = keys

    @property
    def keys(self) -> torch.Tensor:
        return self._keys

    @keys.setter
    def keys(self, keys: torch.Tensor) -> None:
        # Hashed once here rather than again by every layer's draw (`hash_keys`); the rows' hashes
        # for every layer's first draw are made together, at the first draw.
        self._keys, self._hashes = keys, hash_keys(keys)
        self._first_hashes: dict[int, torch.Tensor] | None = None
        self._first_normals: dict[int, torch.Tensor] | None = None

    def stream(self, layer: nn.Module) -> int:
        """The layer's stream for its next draw: its name's hash and how often it drew in this pass."""
        return self._next(layer)[1]

    def _next(self, layer: nn.Module) -> tuple[int, int]:
        call = self._calls.get(id(layer), 0)
        self._calls[id(layer)] = call + 1
        return call, (self._streams.get(id(layer), 0) << 16) + call

    def _check(self, rows: int) -> None:
        if rows != len(self.keys):
            raise RuntimeError(
                f"a noise layer got {rows} rows but the wrapper keyed {len(self.keys)} inputs; "
                "a layer that multiplies the batch must draw its copies through DrawScope.copies"
            )

    def _row_hashes(self, layer: nn.Module, call: int, stream: int) -> torch.Tensor:
        """The rows' hashes for the layer's draw (`core.seeding.stream_hashes`)."""
        if call or id(layer) not in self._streams:
            return stream_hashes(self._hashes, (stream,))[0]
        return self._first_hashes_of(id(layer))

    def _first_hashes_of(self, layer_id: int) -> torch.Tensor:
        """The rows' hashes for a layer's first draw of the pass: every layer's, made together."""
        if self._first_hashes is None:
            layers = tuple(self._streams)
            first = stream_hashes(self._hashes, tuple(self._streams[i] << 16 for i in layers))
            self._first_hashes = dict(zip(layers, first))
        return self._first_hashes[layer_id]

    def _first_normal(self, layer: nn.Module) -> torch.Tensor | None:
        """The layer's first normal draw of the pass, made with the other fixed-shape layers' when
        the batch is small enough (None otherwise)."""
        if self._first_normals is None:
            layers = tuple(self._normal_shapes)
            shapes = tuple(self._normal_shapes[i] for i in layers)
            size = len(self.keys) * sum(torch.Size(shape).numel() for shape in shapes)
            self._first_normals = {}
            if layers and size <= BATCHED_DRAW_LIMIT:
                hashes = torch.stack([self._first_hashes_of(i) for i in layers])
                self._first_normals = dict(zip(layers, normal_from_hashes_many(hashes, shapes)))
        return self._first_normals.pop(id(layer), None)

    def normal(self, layer: nn.Module, rows: int, shape: tuple[int, ...]) -> torch.Tensor:
        """(rows, *shape) standard normal draws for `layer`, one row per input."""
        self._check(rows)
        call, stream = self._next(layer)
        if call == 0 and self._normal_shapes.get(id(layer)) == tuple(shape):
            draw = self._first_normal(layer)
            if draw is not None:
                return draw
        return normal_from_hashes(self._row_hashes(layer, call, stream), tuple(shape))

    def uniform(self, layer: nn.Module, rows: int, shape: tuple[int, ...]) -> torch.Tensor:
        """(rows, *shape) uniform (0,1) draws for `layer`, one row per input."""
        self._check(rows)
        return uniform_from_hashes(self._row_hashes(layer, *self._next(layer)), tuple(shape))

    @contextlib.contextmanager
    def copies(self, layer: nn.Module, count: int) -> Iterator[None]:
        """Inside: `count` copies of the batch, copy-major ((count, N) flattened), each row its own key."""
        keys = self.keys
        copy = torch.arange(count, device=keys.device, dtype=torch.int64).view(-1, 1)
        self.keys = mix_keys(keys.view(1, -1), copy, self.stream(layer)).flatten()
        try:
            yield
        finally:
            self.keys = keys


class Randomness:
    """The per-sample draw source of one wrapped network: its seed, its noise layers and their
    streams, and the history of inputs it has seen."""

    def __init__(self, net: nn.Module, seed: int = 0) -> None:
        self.seed = seed
        named = [(name, module) for name, module in net.named_modules() if hasattr(module, "draws")]
        self.layers = [module for _, module in named]
        self.stream_ids = [
            derive_seed("noise-layer", name) for name, _ in named
        ]  # by name: stable across processes
        self.history = InputHistory()

    def reseed(self, seed: int = 0) -> None:
        """Start over: draws from now on depend on `seed`, and every input counts as new."""
        self.seed = int(seed)
        self.history.clear()

    @property
    def active(self) -> bool:
        return any(getattr(m, "is_stochastic", False) for m in self.layers)

    @contextlib.contextmanager
    def scope(
        self, x: torch.Tensor, content: torch.Tensor | None = None
    ) -> Iterator[DrawScope | None]:
        """Within: the network's noise layers draw per input row of x (nothing to do if none is
        random). `content`: the rows' `row_keys`, when the caller has them (copies of one batch)."""
        if not self.active or x.dim() == 0 or len(x) == 0:
            yield None
            return
        content = row_keys(x) if content is None else content
        occurrence = self.history.occurrences(content)
        streams = {
            id(m): stream for m, stream in zip(self.layers, self.stream_ids)
        }  # ids of this copy's layers
        normal_shapes = {
            id(m): shape
            for m in self.layers
            if (shape := getattr(m, "fixed_normal_shape", None)) is not None
        }
        scope = DrawScope(mix_keys(content, occurrence, self.seed), streams, normal_shapes)
        previous = [m.draws for m in self.layers]
        for m in self.layers:
            m.draws = scope
        try:
            yield scope
        finally:
            for m, old in zip(self.layers, previous):
                m.draws = old
