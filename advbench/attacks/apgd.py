"""APGD (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness..."), native and batched.

Why native: the authors' package (`apgd-ce`, `apgd-t` in `autoattack.py`) runs every sample for
all its iterations and seeds from the global RNG, so a sample's result depends on its batch.
Here, as in PGD (`gradient.py`):

- a sample leaves the active set as soon as a forward pass shows it misclassified and keeps that
  iterate. On models random at inference one lucky pass proves nothing: there the EOT draws
  that compute each gradient nominate the points most of them misclassify, at no extra cost,
  and a sample leaves only when an independent vote (`models.vote`) confirms its point wrong;
  the others run all their steps and return their point of highest EOT-averaged loss;
- random starts come from the sample's own index-seeded stream (`gradient.random_start`; for
  dlr-targeted keyed by the target class too);
- `steps` counts gradient steps taken per sample, times the view's EOT draws.

The step-size rule is the authors' (fra31/auto-attack `autopgd_base.py`): step 2 eps; checkpoints
after w_1 = int(0.22 N) iterations, then windows shrinking by int(0.03 N) down to int(0.06 N);
at a checkpoint a sample's step halves, and it restarts from its best point, when at most rho
of the window's steps increased the loss, or when its step was not halved at the previous
checkpoint and its best loss has not improved since. Momentum alpha = 0.75 (1 on the first
step). One deliberate difference: the first window's first step is compared with the loss at
the starting point, as the paper defines it (the reference compares it with an unset zero).

Losses: `ce`, `dlr` (untargeted), `dlr-targeted` (one run per target over the
`n_target_classes` most likely wrong classes of the clean input, as AutoAttack's APGD-T, or
the classes given as `targets`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from advbench.attacks.base import CE, MARGIN_LOSS, Attack
from advbench.attacks.gradient import random_start
from advbench.attacks.losses import EOTStep, attack_loss, targeted_dlr, value_and_grad
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core import device as device_policy
from advbench.core.errors import UsageError
from advbench.core.tensors import partition, per_sample
from advbench.core.threat import Norm, ThreatModel, batch_norm

APGD_LOSSES = ("ce", "dlr", "dlr-targeted")


@dataclass(frozen=True)
class APGDConfig:
    steps: int = 100
    restarts: int = 1  # per target class for dlr-targeted
    loss: str = "ce"  # ce | dlr | dlr-targeted
    n_target_classes: int = (
        9  # dlr-targeted: the most likely wrong classes, one run each (capped at classes - 1)
    )
    rho: float = (
        0.75  # halve the step when at most this fraction of a window's steps raised the loss
    )
    alpha: float = 0.75  # momentum: weight of the new projected step against the previous move
    early_stop: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.restarts < 1:
            raise UsageError("apgd needs steps >= 1 and restarts >= 1")
        if self.loss not in APGD_LOSSES:
            raise UsageError(f"apgd loss is one of {', '.join(APGD_LOSSES)}, not {self.loss!r}")
        if self.n_target_classes < 1:
            raise UsageError("apgd needs n_target_classes >= 1")
        if not (0 < self.rho <= 1 and math.isfinite(self.rho)):
            raise UsageError(f"apgd rho must be in (0, 1], got {self.rho}")
        if not (0 < self.alpha <= 1 and math.isfinite(self.alpha)):
            raise UsageError(f"apgd alpha (momentum) must be in (0, 1], got {self.alpha}")


def checkpoints(steps: int) -> dict[int, int]:
    """{iterations done: window length} at which the step-size rule is checked (the reference's
    int(0.22 N) first window, shrinking by int(0.03 N) per checkpoint to int(0.06 N))."""
    first, least, shrink = (
        max(int(0.22 * steps), 1),
        max(int(0.06 * steps), 1),
        max(int(0.03 * steps), 1),
    )
    out, at, k = {}, first, first
    while at <= steps:
        out[at] = k
        k = max(k - shrink, least)
        at += k
    return out


def likeliest_wrong_classes(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's k highest-scoring classes other than its label, most likely first."""
    return logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).argsort(
        1, descending=True
    )[:, :k]


def _loss_grad(
    model: AttackedModel, x: torch.Tensor, y: torch.Tensor, loss: str, target: torch.Tensor | None
) -> EOTStep:
    """(logits, loss per sample, input gradient), each averaged over the view's EOT draws, and the
    draws that misclassified each sample."""
    return value_and_grad(
        model,
        x,
        lambda z: targeted_dlr(z, y, target) if target is not None else attack_loss(z, y, loss),
        labels=y,
    )


def _direction(grad: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The steepest-ascent unit step: sign for Linf, the L2-normalized gradient for L2."""
    if norm is Norm.LINF:
        return grad.sign()
    return grad / per_sample(batch_norm(grad, Norm.L2) + 1e-12, grad)


@register_attack(
    "apgd",
    config=APGDConfig,
    family="gradient",
    description="Auto-PGD (Croce & Hein), native and batched: step-size-free PGD with momentum; CE, DLR or targeted DLR; per-sample early stopping",
)
class APGD(Attack):
    name = "apgd"
    norms = ("linf", "l2")
    uses_gradients = True
    steps_count_eot = True

    def __init__(self, config: APGDConfig = APGDConfig()) -> None:
        self.config = config

    def stage_kind(self) -> str:
        return CE if self.config.loss == "ce" else MARGIN_LOSS

    def iterations(self) -> int | None:
        # Runs after the first (restarts, target classes) add their steps: one run only.
        cfg = self.config
        return (
            cfg.steps
            if cfg.early_stop and cfg.restarts == 1 and cfg.loss != "dlr-targeted"
            else None
        )

    def run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`targets` (dlr-targeted only): each sample's target classes, one run per column, -1 for
        none; by default the `n_target_classes` most likely wrong classes at x."""
        cfg = self.config
        n = len(x)
        steps = torch.zeros(n, dtype=torch.int64, device=x.device)
        x_out = x.clone()
        if threat.eps == 0 or n == 0:
            return x_out, steps
        judge = not model.stochastic  # may a forward pass declare a sample broken?
        broken = torch.zeros(n, dtype=torch.bool, device=x.device)
        kept_loss = torch.full((n,), float("-inf"), device=x.device)
        with torch.no_grad():
            clean = model(x)
        if judge:  # misclassified already: keep x and spend nothing
            broken = clean.argmax(1) != y
        runs = cfg.restarts
        if cfg.loss == "dlr-targeted":
            if model.num_classes < 4:
                raise UsageError(
                    f"apgd loss=dlr-targeted needs at least 4 classes, the model has {model.num_classes}"
                )
            if targets is None:
                targets = likeliest_wrong_classes(
                    clean, y, min(cfg.n_target_classes, model.num_classes - 1)
                )
            runs *= targets.shape[1]
        elif cfg.loss == "dlr" and model.num_classes < 3:
            raise UsageError(
                f"apgd loss=dlr needs at least 3 classes, the model has {model.num_classes}"
            )
        if cfg.loss != "dlr-targeted":
            targets = None
        for run in range(runs):
            # Each run (a restart, or a target class) attacks only what no earlier run broke.
            todo = (
                (~broken if targets is None else ~broken & (targets[:, run // cfg.restarts] >= 0))
                .nonzero()
                .view(-1)
            )
            if len(todo) == 0:
                continue
            if targets is None:
                target, start = None, random_start(x[todo], threat, indices[todo], seed, run)
            else:
                # A target's run starts from a point keyed by (sample, target class, restart), not by
                # its rank: the same target gives the same run whichever ranking put it where.
                target = targets[todo, run // cfg.restarts]
                start = random_start(
                    x[todo],
                    threat,
                    indices[todo] * model.num_classes + target,
                    seed,
                    run % cfg.restarts,
                )
            x_run, hit, loss, used = self._single_run(
                model, x[todo], y[todo], target, start, threat, judge
            )
            steps[todo] += used
            keep = hit | (loss > kept_loss[todo])
            x_out[todo] = torch.where(per_sample(keep, x_run), x_run, x_out[todo])
            kept_loss[todo] = torch.maximum(kept_loss[todo], loss)
            broken[todo] |= hit
        return x_out, steps

    def _single_run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        start: torch.Tensor,
        threat: ThreatModel,
        judge: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One APGD run from `start`: (x_adv, hit, best loss, steps used) per sample.

        x_adv is the first misclassified iterate where `hit`, else the iterate of highest loss.
        The state of the samples still running is kept compact (rows `pos` of the batch)."""
        cfg = self.config
        n = len(x)
        draws = int(model.eot_draws)
        # Look for breaks at every step where a pass is proof, and on a random model when early
        # stopping is on (its step draws nominate, a vote confirms).
        look = judge or cfg.early_stop
        early = cfg.early_stop and look
        x_out, hit = start.clone(), torch.zeros(n, dtype=torch.bool, device=x.device)
        loss_out = torch.full((n,), float("-inf"), device=x.device)
        used = torch.zeros(n, dtype=torch.int64, device=x.device)
        marks = checkpoints(cfg.steps)

        _, loss, grad, wrong = _loss_grad(model, start, y, cfg.loss, target)
        s: dict[str, torch.Tensor] = {
            "pos": torch.arange(n, device=x.device),
            "x0": x,
            "y": y,
            "xa": start.clone(),
            "grad": grad,
            "loss": loss,
            "running": torch.ones(n, dtype=torch.bool, device=x.device),
        }
        if target is not None:
            s["target"] = target

        every = device_policy.steps_between_syncs(x.device)

        def observe(
            state: dict[str, torch.Tensor], wrong: torch.Tensor, step: int
        ) -> dict[str, torch.Tensor]:
            """Record first hits on the device; with early stopping, mark them finished and drop
            the finished rows from the state every `every` steps (until then they ride along,
            never nominated again)."""
            if not look:
                return state
            pos, xa, running = state["pos"], state["xa"], state["running"]
            now, spent = model.confirmed_wrong(xa, state["y"], wrong * running)
            used[pos] += spent
            first = per_sample(now & ~hit[pos], xa)
            x_out[pos] = torch.where(first, xa, x_out[pos])
            hit[pos] |= now
            if not early:
                return state
            state["running"] = running & ~now
            if step % every:
                return state
            rows, keep = partition(~state["running"])  # the host sync, once per `every` steps
            if len(rows) == 0:
                return state
            return {k: v[keep] for k, v in state.items()}

        s = observe(s, wrong, 0)
        s["x_old"], s["x_best"], s["g_best"] = s["xa"].clone(), s["xa"].clone(), s["grad"].clone()
        s["l_best"], s["l_check"] = s["loss"].clone(), s["loss"].clone()
        s["step"] = torch.full((len(s["pos"]),), 2.0 * threat.eps, device=x.device)
        s["rises"] = torch.zeros(len(s["pos"]), device=x.device)
        s["reduced"] = torch.ones(
            len(s["pos"]), dtype=torch.bool, device=x.device
        )  # no "no improvement" halving at the first checkpoint

        for i in range(cfg.steps):
            if len(s["pos"]) == 0:
                break
            a = cfg.alpha if i > 0 else 1.0
            xa, x0 = s["xa"], s["x0"]
            z = threat.project(
                x0, xa + per_sample(s["step"], xa) * _direction(s["grad"], threat.norm)
            )
            x_new = threat.project(x0, xa + a * (z - xa) + (1 - a) * (xa - s["x_old"]))
            s["x_old"], s["xa"] = xa, x_new
            used[s["pos"]] += draws * s["running"]
            _, loss, grad, wrong = _loss_grad(model, x_new, s["y"], cfg.loss, s.get("target"))
            s["grad"] = grad
            s["rises"] += (loss > s["loss"]).float()
            s["loss"] = loss
            better = loss > s["l_best"]
            s["x_best"] = torch.where(per_sample(better, x_new), x_new, s["x_best"])
            s["g_best"] = torch.where(per_sample(better, grad), grad, s["g_best"])
            s["l_best"] = torch.where(better, loss, s["l_best"])
            s = observe(s, wrong, i + 1)
            window = marks.get(i + 1)
            if window is not None and len(s["pos"]):
                halve = (s["rises"] <= window * cfg.rho) | (
                    ~s["reduced"] & (s["l_check"] >= s["l_best"])
                )
                s["reduced"], s["l_check"], s["rises"] = (
                    halve,
                    s["l_best"].clone(),
                    torch.zeros_like(s["rises"]),
                )
                s["step"] = torch.where(halve, s["step"] / 2, s["step"])
                s["xa"] = torch.where(per_sample(halve, x_new), s["x_best"], s["xa"])
                s["grad"] = torch.where(per_sample(halve, grad), s["g_best"], s["grad"])

        # Samples never hit return their highest-loss iterate; a hit sample keeps its first hit
        # (and, stopped early, no loss: it is broken whatever later runs find).
        pos = s["pos"]
        done = hit[pos]
        x_out[pos] = torch.where(per_sample(done, x_out), x_out[pos], s["x_best"])
        loss_out[pos] = torch.where(done, float("-inf"), s["l_best"]) if early else s["l_best"]
        return x_out, hit, loss_out, used
