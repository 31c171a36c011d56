"""Gradient attacks: FGSM, BIM, PGD (Linf, L2, L1; CE, CW-margin, DLR), MultiTargeted, EOT-PGD.

A sample leaves the active set as soon as the forward pass of a step shows it misclassified,
so no compute is spent on points already broken, and its adversarial example is kept. On a
model that is random at inference a single lucky forward pass proves nothing: there the step's
EOT draws nominate the points most of them misclassify and a sample leaves only when an
independent vote confirms it (`AttackedModel.confirmed_wrong`); the base class's final vote
decides success.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from advbench.attacks.base import CE, MARGIN_LOSS, SINGLE_STEP, Attack
from advbench.attacks.losses import LOSSES, loss_and_grad
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core import device as device_policy
from advbench.core.errors import UsageError
from advbench.core.seeding import sample_normal, sample_uniform
from advbench.core.tensors import partition, per_sample
from advbench.core.threat import Norm, ThreatModel, batch_norm

EOT_MODES = ("mean", "sign-mean-normalized")


@dataclass(frozen=True)
class PGDConfig:
    steps: int = 20
    rel_stepsize: float = (
        0.125  # step = rel_stepsize * eps (2.5 * eps / steps for 20 steps, Madry et al.)
    )
    random_start: bool = True
    restarts: int = 1
    early_stop: bool = True
    loss: str = "ce"  # ce | cw (margin, Carlini & Wagner) | dlr (Croce & Hein)
    eot_mode: str = "mean"  # mean gradient over EOT draws, or the dissertation's §4.2.4 sign of the mean of L2-normalized gradients
    l1_sparsity: float = 0.99  # L1 steps move the coordinates above this quantile of |gradient| (Tramer & Boneh's SLIDE)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.restarts < 1:
            raise UsageError("pgd needs steps >= 1 and restarts >= 1")
        if not (self.rel_stepsize > 0 and math.isfinite(self.rel_stepsize)):
            raise UsageError("pgd rel_stepsize must be a positive number")
        if self.loss not in LOSSES:
            raise UsageError(f"pgd loss is one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.eot_mode not in EOT_MODES:
            raise UsageError(f"eot_mode is one of {', '.join(EOT_MODES)}, not {self.eot_mode!r}")
        if not 0 <= self.l1_sparsity < 1:
            raise UsageError("l1_sparsity is a quantile in [0, 1)")


def random_start(
    x: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, seed: int, restart: int
) -> torch.Tensor:
    """Uniform point in the eps-ball, drawn from the sample's own index-seeded stream."""
    shape = tuple(x.shape[1:])
    if threat.norm is Norm.LINF:
        u = sample_uniform(seed, indices, shape, stream=restart, device=x.device)
        delta = (2 * u - 1) * threat.eps
    elif threat.norm in (Norm.L2, Norm.L1):
        # L2: Gaussian direction on the sphere; L1: Laplace direction on the L1 sphere (uniform
        # on it after normalization); radius u^(1/d) makes the point uniform in the ball.
        direction = sample_normal(seed, indices, shape, stream=restart, device=x.device)
        if threat.norm is Norm.L1:
            direction = (
                torch.log(
                    sample_uniform(
                        seed, indices, shape, stream=500 + restart, device=x.device
                    ).clamp_min(1e-12)
                )
                * direction.sign()
            )
        direction = direction / per_sample(batch_norm(direction, threat.norm).clamp_min(1e-12), x)
        d = x[0].numel()
        radius = sample_uniform(seed, indices, (1,), stream=1000 + restart, device=x.device).view(
            -1
        ) ** (1.0 / d)
        delta = direction * per_sample(radius * threat.eps, x)
    else:
        return x.clone()
    return threat.project(x, x + delta)


def ascent_step(
    x_adv: torch.Tensor, grad: torch.Tensor, norm: Norm, stepsize: float, l1_sparsity: float = 0.99
) -> torch.Tensor:
    if norm is Norm.LINF:
        return x_adv + stepsize * grad.sign()
    if norm is Norm.L1:
        flat = grad.flatten(1)
        # Move only the largest coordinates, which an L1 budget buys most cheaply; coordinates
        # pinned at a bound in the ascent direction are skipped (they cannot move).
        blocked = ((x_adv.flatten(1) <= 0) & (flat < 0)) | ((x_adv.flatten(1) >= 1) & (flat > 0))
        mag = flat.abs().masked_fill(blocked, 0)
        cut = mag.quantile(l1_sparsity, dim=1, keepdim=True)
        direction = flat.sign() * ((mag >= cut) & (mag > 0))
        direction = direction / direction.abs().sum(1, keepdim=True).clamp_min(1)
        return x_adv + stepsize * direction.view_as(grad)
    g_norm = batch_norm(grad, Norm.L2).clamp_min(1e-12)
    return x_adv + stepsize * grad / per_sample(g_norm, grad)


@register_attack(
    "pgd",
    config=PGDConfig,
    family="gradient",
    description="Projected gradient descent (Madry et al.): Linf, L2, L1; CE, CW or DLR loss; EOT on random models",
)
class PGD(Attack):
    name = "pgd"
    norms = ("linf", "l2", "l1")
    uses_gradients = True
    steps_count_eot = True

    def __init__(self, config: PGDConfig = PGDConfig()) -> None:
        self.config = config

    @staticmethod
    def _record(
        hit: torch.Tensor,
        active: torch.Tensor,
        todo: torch.Tensor,
        x_adv: torch.Tensor,
        x_best: torch.Tensor,
        broken: torch.Tensor,
    ) -> None:
        """Keep the first iterate that fooled the model for each sample of the active set newly
        `hit` (a mask over `active`; device-side selects, no host sync)."""
        where = todo[active]
        first = hit & ~broken[where]
        x_best[where] = torch.where(per_sample(first, x_best), x_adv[active], x_best[where])
        broken[where] |= hit

    def targets(
        self, model: AttackedModel, x: torch.Tensor, y: torch.Tensor, restart: int
    ) -> torch.Tensor | None:
        """Per-sample target class for this restart (None: untargeted)."""
        return None

    def stage_kind(self) -> str:
        if self.config.steps == 1:
            return SINGLE_STEP
        return CE if self.config.loss == "ce" else MARGIN_LOSS

    def iterations(self) -> int | None:
        # Restarts add their steps: one run only.
        cfg = self.config
        return cfg.steps if cfg.early_stop and cfg.steps > 1 and cfg.restarts == 1 else None

    def run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        stepsize = cfg.rel_stepsize * threat.eps
        early_stop = cfg.early_stop  # random models: the step's draws nominate, a vote confirms
        every = device_policy.steps_between_syncs(x.device)
        x_best = x.clone()
        broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        steps = torch.zeros(len(x), dtype=torch.int64, device=x.device)
        if threat.eps == 0:
            return x_best, steps
        for restart in range(cfg.restarts):
            # Each restart attacks only the samples no earlier restart broke.
            todo = (~broken).nonzero().view(-1)
            if len(todo) == 0:
                break
            x0, y0 = x[todo], y[todo]
            target_all = self.targets(model, x0, y0, restart)
            x_adv = (
                random_start(x0, threat, indices[todo], seed, restart)
                if cfg.random_start
                else x0.clone()
            )
            active = torch.arange(len(todo), device=x.device)
            running = torch.ones(len(todo), dtype=torch.bool, device=x.device)  # over `active`
            for i in range(cfg.steps):
                target = None if target_all is None else target_all[active]
                step = loss_and_grad(
                    model,
                    x_adv[active],
                    y0[active],
                    cfg.loss,
                    target,
                    cfg.eot_mode == "sign-mean-normalized",
                )
                grad = step.grad
                if early_stop:
                    # A finished row riding along until the next compaction is not nominated again.
                    hit, spent = model.confirmed_wrong(
                        x_adv[active], y0[active], step.wrong_draws * running
                    )
                    steps[todo[active]] += spent
                    self._record(hit, active, todo, x_adv, x_best, broken)
                    running = running & ~hit
                    if (i + 1) % every == 0:
                        rows, keep = partition(~running)  # the host sync, once per `every` steps
                        if len(rows):
                            active, grad, running = active[keep], grad[keep], running[keep]
                            if len(active) == 0:
                                break
                stepped = ascent_step(x_adv[active], grad, threat.norm, stepsize, cfg.l1_sparsity)
                x_adv[active] = threat.project(x0[active], stepped)
                steps[todo[active]] += model.eot_draws * running
            if early_stop and every > 1 and len(active):
                active = active[partition(~running)[1]]
            if len(active) and restart < cfg.restarts - 1:
                # The next restart needs to know which last iterates succeeded; after the final
                # restart the base class's clean forward pass decides success anyway.
                hit = model.judge(x_adv[active], y0[active]).wrong
                self._record(hit, active, todo, x_adv, x_best, broken)
            # Samples never broken keep their last iterate.
            unbroken = ~broken[todo]
            x_best[todo[unbroken]] = x_adv[unbroken]
        return x_best, steps


@dataclass(frozen=True)
class FGSMConfig(PGDConfig):
    steps: int = 1
    rel_stepsize: float = 1.0
    random_start: bool = False


@register_attack(
    "fgsm",
    config=FGSMConfig,
    family="gradient",
    description="Fast gradient sign method (one step of size eps; L2: normalized gradient)",
)
class FGSM(PGD):
    name = "fgsm"


@dataclass(frozen=True)
class BIMConfig(PGDConfig):
    random_start: bool = False
    rel_stepsize: float = 0.1  # eps/10, as in the dissertation's Table 4.1


@register_attack(
    "bim",
    config=BIMConfig,
    family="gradient",
    description="Basic iterative method (Kurakin et al.): PGD without random start, step eps/10",
)
class BIM(PGD):
    name = "bim"


@register_attack(
    "eot-pgd",
    config=PGDConfig,
    family="gradient",
    description="PGD with expectation over transformation; EOT draws set by --eot (20 when the model is random)",
)
class EOTPGD(PGD):
    name = "eot-pgd"


@dataclass(frozen=True)
class EPGDConfig(PGDConfig):
    eot_mode: str = "sign-mean-normalized"


@register_attack(
    "epgd",
    config=EPGDConfig,
    family="gradient",
    description="Expectation PGD with the sign of the mean of L2-normalized gradients over noise draws (dissertation §4.2.4)",
)
class EPGD(PGD):
    name = "epgd"


@dataclass(frozen=True)
class MultiTargetedConfig(PGDConfig):
    targets: int = 9  # the most likely wrong classes tried, one restart each
    restarts: int = 1  # per target

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.targets < 1:
            raise UsageError("multi-targeted needs targets >= 1")


@register_attack(
    "multi-targeted",
    config=MultiTargetedConfig,
    family="gradient",
    description="MultiTargeted PGD (Gowal et al.): the margin to each of the top wrong classes in turn",
)
class MultiTargeted(PGD):
    name = "multi-targeted"

    def __init__(self, config: MultiTargetedConfig = MultiTargetedConfig()) -> None:
        # One PGD restart per (target, restart) pair; `targets` picks the class for each.
        super().__init__(config)
        self.config = MultiTargetedConfig(
            **{**config.__dict__, "restarts": config.targets * config.restarts}
        )
        self._per_target = config.restarts

    def targets(
        self, model: AttackedModel, x: torch.Tensor, y: torch.Tensor, restart: int
    ) -> torch.Tensor:
        with torch.no_grad():
            logits = model(x)
        ranked = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).argsort(
            1, descending=True
        )
        k = min(restart // self._per_target, logits.shape[1] - 2)
        return ranked[:, k]
