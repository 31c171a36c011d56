"""FGSM and PGD (Linf, L2) with random start, restarts, CE loss, and per-sample early stopping.

A sample leaves the active set as soon as the forward pass of a step shows it misclassified,
so no compute is spent on points already broken, and its adversarial example is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from advbench.attacks.base import Attack
from advbench.attacks.registry import register_attack
from advbench.core.errors import UsageError
from advbench.core.seeding import sample_normal, sample_uniform
from advbench.core.threat import Norm, ThreatModel, batch_norm
from advbench.models.wrapper import RobustModel


@dataclass(frozen=True)
class PGDConfig:
    steps: int = 20
    rel_stepsize: float = 0.125  # step = rel_stepsize * eps (2.5 * eps / steps for 20 steps, Madry et al.)
    random_start: bool = True
    restarts: int = 1
    early_stop: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.restarts < 1:
            raise UsageError("pgd needs steps >= 1 and restarts >= 1")
        if not (self.rel_stepsize > 0 and math.isfinite(self.rel_stepsize)):
            raise UsageError("pgd rel_stepsize must be a positive number")


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def random_start(x: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, seed: int, restart: int) -> torch.Tensor:
    """Uniform point in the eps-ball, drawn from the sample's own index-seeded stream."""
    shape = tuple(x.shape[1:])
    if threat.norm is Norm.LINF:
        u = sample_uniform(seed, indices, shape, stream=restart, device=x.device)
        delta = (2 * u - 1) * threat.eps
    else:
        direction = sample_normal(seed, indices, shape, stream=restart, device=x.device)
        direction = direction / _expand(batch_norm(direction, Norm.L2).clamp_min(1e-12), x)
        d = x[0].numel()
        radius = sample_uniform(seed, indices, (1,), stream=1000 + restart, device=x.device).view(-1) ** (1.0 / d)
        delta = direction * _expand(radius * threat.eps, x)
    return threat.project(x, x + delta)


def ascent_step(x_adv: torch.Tensor, grad: torch.Tensor, norm: Norm, stepsize: float) -> torch.Tensor:
    if norm is Norm.LINF:
        return x_adv + stepsize * grad.sign()
    g_norm = batch_norm(grad, Norm.L2).clamp_min(1e-12)
    return x_adv + stepsize * grad / _expand(g_norm, grad)


def loss_and_grad(model: RobustModel, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the gradient of the summed CE loss (samples are independent in eval mode)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
    return logits.detach(), grad


@register_attack("pgd", config=PGDConfig, family="gradient", description="Projected gradient descent (Madry et al.), CE loss")
class PGD(Attack):
    name = "pgd"

    def __init__(self, config: PGDConfig = PGDConfig()) -> None:
        self.config = config

    @staticmethod
    def _record(
        hit: torch.Tensor, active: torch.Tensor, todo: torch.Tensor, x_adv: torch.Tensor, x_best: torch.Tensor, broken: torch.Tensor
    ) -> None:
        """Keep the first iterate that fooled the model for each newly broken sample."""
        new = hit & ~broken[todo[active]]
        if bool(new.any()):
            where = todo[active[new]]
            broken[where] = True
            x_best[where] = x_adv[active[new]]

    def run(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        stepsize = cfg.rel_stepsize * threat.eps
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
            x_adv = random_start(x0, threat, indices[todo], seed, restart) if cfg.random_start else x0.clone()
            active = torch.arange(len(todo), device=x.device)
            for _ in range(cfg.steps):
                logits, grad = loss_and_grad(model, x_adv[active], y0[active])
                hit = logits.argmax(1) != y0[active]
                self._record(hit, active, todo, x_adv, x_best, broken)
                if cfg.early_stop and bool(hit.any()):
                    active, grad = active[~hit], grad[~hit]
                    if len(active) == 0:
                        break
                stepped = ascent_step(x_adv[active], grad, threat.norm, stepsize)
                x_adv[active] = threat.project(x0[active], stepped)
                steps[todo[active]] += 1
            if len(active) and restart < cfg.restarts - 1:
                # The next restart needs to know which last iterates succeeded; after the final
                # restart the base class's clean forward pass decides success anyway.
                with torch.no_grad():
                    hit = model(x_adv[active]).argmax(1) != y0[active]
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


@register_attack("fgsm", config=FGSMConfig, family="gradient", description="Fast gradient sign method (one step of size eps; L2: normalized gradient)")
class FGSM(PGD):
    name = "fgsm"
