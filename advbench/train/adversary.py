"""The inner maximization of adversarial training: PGD on any per-sample objective.

Recipes differ in what they maximize (CE for Madry AT, KL to the clean softmax for TRADES) and
in how far (Friendly AT stops a sample `stop_after` steps after it is first misclassified), so
this takes the objective as a function. The network is attacked in eval mode (batch-norm
statistics frozen, as in the reference implementations); noise layers that act at inference
(PNI) stay active, and the smoothing wrapper's soft surrogate turns PGD into EPGD.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from advbench.attacks.gradient import ascent_step, random_start
from advbench.core.seeding import sample_normal
from advbench.core.threat import ThreatModel
from advbench.models.wrapper import RobustModel

Objective = Callable[
    [torch.Tensor, torch.Tensor], torch.Tensor
]  # (logits, rows) -> per-sample loss


def maximize(
    model: RobustModel,
    x: torch.Tensor,
    objective: Objective,
    threat: ThreatModel,
    steps: int,
    stepsize: float,
    indices: torch.Tensor,
    seed: int,
    start: str = "uniform",
    y: torch.Tensor | None = None,
    stop_after: int | None = None,
) -> torch.Tensor:
    """Return detached adversarial inputs after `steps` ascent steps on `objective`.

    start: "uniform" (a point of the eps-ball), "normal" (x + 0.001 N(0, I), TRADES) or "none".
    stop_after: with labels `y`, freeze each sample `stop_after` steps after the model first
    misclassifies it (Friendly AT's early-stopped PGD).
    """
    was_training = model.net.training
    model.net.eval()
    if start == "uniform":
        x_adv = random_start(x, threat, indices, seed, 0)
    elif start == "normal":
        x_adv = threat.project(
            x, x + 0.001 * sample_normal(seed, indices, tuple(x.shape[1:]), device=x.device)
        )
    else:
        x_adv = x.clone()
    budget = torch.full(
        (len(x),), -1, dtype=torch.int64, device=x.device
    )  # steps left once fooled; -1: not yet
    rows = torch.arange(len(x), device=x.device)
    with model.attack_mode():
        for _ in range(steps):
            xr = x_adv[rows].detach().requires_grad_(True)
            logits = model(xr)
            (grad,) = torch.autograd.grad(objective(logits, rows).sum(), xr)
            if stop_after is not None and y is not None:
                fooled = (logits.argmax(1) != y[rows]) & (budget[rows] < 0)
                budget[rows[fooled]] = stop_after
                keep = budget[rows] != 0
                budget[rows[budget[rows] > 0]] -= 1
                rows, grad = rows[keep], grad[keep]
                if len(rows) == 0:
                    break
            x_adv[rows] = threat.project(
                x[rows], ascent_step(x_adv[rows], grad, threat.norm, stepsize)
            )
    model.net.train(was_training)
    return x_adv.detach()
