"""The one wrapper every model is served through.

It takes [0,1] inputs and owns normalization, bounds, eval mode, and the traits attacks
rely on: `stochastic` (random at inference) and BPDA surrogates switched on by `attack_mode()`.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

from advbench.core.errors import UsageError
from advbench.core.seeding import row_keys
from advbench.models.bpda import BPDALayer
from advbench.models.randomness import Randomness


class RobustModel(nn.Module):
    """A classifier on [0,1] images, always in eval mode, with frozen parameters."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(
        self,
        net: nn.Module,
        input_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        name: str = "model",
        freeze: bool = True,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = num_classes
        channels = self.input_shape[0]
        mean_t = torch.tensor(mean if mean is not None else [0.0] * channels, dtype=torch.float32)
        std_t = torch.tensor(std if std is not None else [1.0] * channels, dtype=torch.float32)
        if len(mean_t) != channels or len(std_t) != channels or bool((std_t <= 0).any()):
            raise UsageError(f"{name}: normalization needs {channels} means and positive stds")
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))
        # Attacks need input gradients only; frozen weights skip their gradient computation.
        # Adversarial training attacks the network it is training, so it wraps without freezing.
        if freeze:
            for p in self.net.parameters():
                p.requires_grad_(False)
        # Noise layers draw per input row (models/randomness.py), so a sample's predictions do not
        # depend on batching or resumes. The training wrapper keeps torch's RNG: training wants speed.
        self.randomness = Randomness(net) if freeze else None
        super().train(False)

    bounds = (0.0, 1.0)

    def train(self, mode: bool = True) -> "RobustModel":
        """Always eval: training happens on the bare network, never through the wrapper."""
        return super().train(False)

    @property
    def stochastic(self) -> bool:
        """True when predictions are random at inference (noise layers active in eval)."""
        return any(getattr(m, "is_stochastic", False) for m in self.net.modules())

    @property
    def averaged_copies(self) -> int:
        """Noisy copies of the input one forward pass already averages (randomized smoothing's M,
        nested layers multiplied; 1 elsewhere). Attacks size their EOT draws by it."""
        copies = 1
        for m in self.net.modules():
            copies *= int(getattr(m, "averaged_copies", 1))
        return copies

    @property
    def bpda_layers(self) -> list[BPDALayer]:
        return [m for m in self.net.modules() if isinstance(m, BPDALayer)]

    @property
    def has_bpda(self) -> bool:
        return bool(self.bpda_layers)

    @contextlib.contextmanager
    def attack_mode(self, bpda: bool = True) -> Iterator["RobustModel"]:
        """Within this context, non-differentiable layers pass gradients through their surrogates."""
        layers = self.bpda_layers
        previous = [layer.use_surrogate for layer in layers]
        for layer in layers:
            layer.use_surrogate = bpda
        try:
            yield self
        finally:
            for layer, old in zip(layers, previous):
                layer.use_surrogate = old

    def check_inputs(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise UsageError(
                f"{self.name} expects inputs of shape N x {'x'.join(map(str, self.input_shape))}, got {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.randomness is None:
            return self.net((x - self.mean) / self.std)
        with self.randomness.scope(x):
            return self.net((x - self.mean) / self.std)

    def forward_keyed(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Forward rows of x whose `core.seeding.row_keys` the caller already has (`keys`): copies of
        one batch, keyed once. Identical rows in one call draw fresh noise each, in row order."""
        if self.randomness is None or not self.randomness.active or len(x) == 0:
            return self(x)
        with self.randomness.scope(x, keys):
            return self.net((x - self.mean) / self.std)

    def forward_copies(
        self, x: torch.Tensor, copies: int, keys: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The logits of `copies` passes of each row of x, copy-major ((copies * N, classes)): a
        random model draws fresh noise for each, as `copies` calls in turn would. One forward pass."""
        keys = row_keys(x) if keys is None else keys
        return self.forward_keyed(x.repeat(copies, *([1] * (x.dim() - 1))), keys.repeat(copies))

    def reseed(self, seed: int = 0) -> RobustModel:
        """Restart the model's own randomness: draws depend on `seed`, every input counts as new.

        Call it before each unit of work meant to be reproducible on its own (a batch, the checks).
        """
        if self.randomness is not None:
            self.randomness.reseed(seed)
        return self

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels, the way the model predicts (argmax of logits here)."""
        return self(x).argmax(dim=1)

    @property
    def device(self) -> torch.device:
        return self.mean.device
