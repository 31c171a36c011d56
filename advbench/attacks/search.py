"""Foolbox-2-style searches over eps: FGSM along a line, PGD over growing budgets.

Papers of 2018-2020 (e.g. the smooth-kernels paper's Table 1) report FGSM and PGD "with
Foolbox's default parameters and unbounded eps": Foolbox 2 then searched for the smallest eps
that fools each sample and counted a sample as robust only when the whole search failed. These
two attacks reproduce those searches as minimum-norm attacks, so the share of failures is the
robust accuracy at Linf eps 1 and the smallest eps found gives the whole accuracy-vs-eps curve.
A failure at eps 1 usually means a zero input gradient (saturated softmax), not robustness:
that is why these figures are reported beside, never instead of, fixed-eps PGD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from advbench.attacks.base import MinimumNormAttack
from advbench.attacks.gradient import PGD, PGDConfig
from advbench.attacks.losses import loss_and_grad
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed
from advbench.core.threat import Norm, ThreatModel

# Rows per forward pass when several eps of the line search are tried at once.
MAX_ROWS = 4096


@dataclass(frozen=True)
class FGSMSearchConfig:
    epsilons: int = 1000  # grid points in (0, max_epsilon], Foolbox 2's GradientSignAttack default
    max_epsilon: float = 1.0

    def __post_init__(self) -> None:
        if self.epsilons < 1:
            raise UsageError("fgsm-search needs epsilons >= 1")
        if not (math.isfinite(self.max_epsilon) and 0 < self.max_epsilon <= 1):
            raise UsageError("fgsm-search max_epsilon must be in (0, 1]")


@register_attack(
    "fgsm-search",
    config=FGSMSearchConfig,
    family="minimum-norm",
    description="FGSM direction, smallest fooling eps on a grid up to max_epsilon (Foolbox 2 GradientSignAttack defaults)",
)
class FGSMSearch(MinimumNormAttack):
    """One input gradient (averaged over EOT draws on random models), then x + eps * sign(grad),
    clipped to [0,1], for eps on the grid in increasing order; each sample keeps the first eps
    that fools the model. Several eps are tried per forward pass."""

    name = "fgsm-search"
    norms = ("linf",)
    uses_gradients = True

    def __init__(self, config: FGSMSearchConfig = FGSMSearchConfig()) -> None:
        self.config = config

    def run_unbounded(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        norm: Norm,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        x_adv, steps, active = self.unbounded_start(model, x, y)
        if len(active) == 0:
            return x_adv, steps
        grad = loss_and_grad(model, x[active], y[active], "ce").grad
        direction = torch.zeros_like(x)
        direction[active] = grad.sign()
        steps[active] = model.eot_draws
        grid = torch.arange(1, cfg.epsilons + 1, device=x.device, dtype=x.dtype) * (
            cfg.max_epsilon / cfg.epsilons
        )
        start = 0
        while start < len(grid) and len(active):
            eps = grid[start : start + max(1, MAX_ROWS // len(active))]
            shape = (len(eps), len(active), *x.shape[1:])
            tries = (
                x[active].unsqueeze(0)
                + eps.view(-1, *([1] * x.dim())) * direction[active].unsqueeze(0)
            ).clamp(0.0, 1.0)
            hit = model.predict(tries.view(-1, *x.shape[1:])).view(shape[:2]) != y[
                active
            ].unsqueeze(0)
            fooled = hit.any(0)
            first = hit.int().argmax(0)  # the smallest eps of this chunk that fooled the sample
            cols = fooled.nonzero().view(-1)
            x_adv[active[cols]] = tries[first[cols], cols]
            steps[active] += torch.where(fooled, first + 1, torch.full_like(first, len(eps)))
            active = active[~fooled]
            start += len(eps)
        return x_adv, steps


@dataclass(frozen=True)
class PGDSearchConfig:
    epsilon: float = 0.3  # first budget tried (Foolbox 2 ProjectedGradientDescentAttack defaults)
    stepsize: float = 0.01  # at the first budget; the ratio stepsize / eps is kept for later ones
    steps: int = 40
    random_start: bool = True
    growth: float = 1.5  # budget factor after a failed try
    tries: int = 20  # budgets tried before the sample counts as an attack failure

    def __post_init__(self) -> None:
        for key in ("epsilon", "stepsize"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"pgd-search {key} must be a positive number, got {value}")
        if self.steps < 1 or self.tries < 1:
            raise UsageError("pgd-search needs steps >= 1 and tries >= 1")
        if not (math.isfinite(self.growth) and self.growth > 1):
            raise UsageError("pgd-search growth must be a number > 1")


@register_attack(
    "pgd-search",
    config=PGDSearchConfig,
    family="minimum-norm",
    description="Linf PGD at growing budgets until it fools (Foolbox 2 PGD exponential search, defaults eps 0.3, 40 steps)",
)
class PGDSearch(MinimumNormAttack):
    """Foolbox 2's PGD with `binary_search=True`, batched: PGD at eps, eps * growth, ... (step
    size proportional to eps) on the samples not yet fooled. Budgets above 1 cover the whole
    pixel range, so there the projection is the [0,1] box and only the step keeps growing, as in
    Foolbox 2. Foolbox 2 then bisects between the last failed and first successful budget; we do
    not (it changes the distances, never which samples fail), so `min_distance` is the norm of
    the first adversarial found, an upper bound of Foolbox 2's."""

    name = "pgd-search"
    norms = ("linf",)
    uses_gradients = True

    def __init__(self, config: PGDSearchConfig = PGDSearchConfig()) -> None:
        self.config = config

    def run_unbounded(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        norm: Norm,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        x_adv, steps, todo = self.unbounded_start(model, x, y)
        eps = cfg.epsilon
        for attempt in range(cfg.tries):
            if len(todo) == 0:
                break
            budget = min(eps, 1.0)
            pgd = PGD(
                PGDConfig(
                    steps=cfg.steps,
                    rel_stepsize=cfg.stepsize / cfg.epsilon * eps / budget,
                    random_start=cfg.random_start,
                )
            )
            found, spent = pgd.run(
                model,
                x[todo],
                y[todo],
                ThreatModel(Norm.LINF, budget),
                indices[todo],
                derive_seed(seed, "pgd-search", attempt),
            )
            steps[todo] += spent
            fooled = model.predict(found) != y[todo]
            x_adv[todo[fooled]] = found[fooled]
            todo = todo[~fooled]
            eps *= cfg.growth
        return x_adv, steps
