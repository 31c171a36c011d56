"""Run Foolbox 3 attacks on a model as attacked ([0,1] images in, logits out) and get torch tensors back.

The wrapper already takes [0,1] inputs, normalizes, and stays in eval mode with frozen
weights, so it is handed to `foolbox.PyTorchModel` as is with bounds (0, 1).

Randomness: Foolbox draws from torch's global generator. `foolbox_minimize` seeds it from the
run seed inside the call (in a forked RNG state, so the caller's global state is untouched).
Results are therefore reproducible for the same batch, seed and device, but not per sample:
a sample's result depends on the other samples in its batch.

Foolbox is imported lazily, so listing or building attacks does not pay for importing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from advbench.core.seeding import derive_seed


class QueryCounter(nn.Module):
    """Forwards to the model and counts the inputs it was asked to classify."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.queries = 0
        self.train(False)

    def train(self, mode: bool = True) -> QueryCounter:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.queries += len(x)
        return self.model(x)


def to_foolbox(model: nn.Module, device: torch.device | str | None = None) -> Any:
    """The model as a `foolbox.PyTorchModel` on [0,1] inputs."""
    import foolbox as fb

    return fb.PyTorchModel(
        model, bounds=(0, 1), device=device if device is not None else next(model.buffers()).device
    )


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generator for the duration of the block, then restore it."""
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def foolbox_minimize(
    make_attack: Callable[[], Any],
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    seed: int,
    name: str,
    needs_start: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a Foolbox minimization attack; return (x_adv, queries per sample).

    x_adv is the smallest adversarial Foolbox found for each sample, and x itself where it
    found none. `needs_start`: the attack (HopSkipJump, Boundary) starts from adversarial
    points and Foolbox refuses the whole batch when its initialization fails for one sample,
    so the initialization (Foolbox's own default, blended uniform noise) runs here first and
    the attack runs only on the samples it broke. Queries are the inputs the model was asked
    to classify, averaged over the batch (Foolbox batches its queries across samples).
    """
    import foolbox as fb

    n = len(x)
    queries = torch.zeros(n, dtype=torch.int64, device=x.device)
    if n == 0:
        return x.clone(), queries
    counter = QueryCounter(model)
    fmodel = to_foolbox(counter, x.device)
    x_adv = x.clone()
    with torch.no_grad():
        # Samples the model already misclassifies stay as they are (distance 0).
        todo = (counter(x).argmax(1) == y).nonzero().view(-1)
    with seeded_global_rng(derive_seed("foolbox", name, seed), x.device):
        if needs_start and len(todo):
            start = fb.attacks.LinearSearchBlendedUniformNoiseAttack(steps=50).run(
                fmodel, x[todo], fb.criteria.Misclassification(y[todo])
            )
            with torch.no_grad():
                ok = counter(start).argmax(1) != y[todo]
            start, todo = start[ok], todo[ok]
        if len(todo):
            kwargs = {"starting_points": start} if needs_start else {}
            x_adv[todo] = (
                make_attack()
                .run(fmodel, x[todo], fb.criteria.Misclassification(y[todo]), **kwargs)
                .detach()
            )
    x_adv = x_adv.clamp(0.0, 1.0)
    with torch.no_grad():
        failed = counter(x_adv).argmax(1) == y
    x_adv[failed] = x[failed]
    queries.fill_(counter.queries // n)
    return x_adv, queries
