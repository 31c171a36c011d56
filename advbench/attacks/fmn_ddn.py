"""Fast Minimum-Norm (FMN) and Decoupled Direction and Norm (DDN): minimum-norm attacks that step
along the gradient and grow or shrink a per-sample norm budget after every step.

Batched and checked against Foolbox 3.3 like the other minimum-norm attacks (see `minimum_norm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from advbench.attacks.base import MinimumNormAttack
from advbench.attacks.losses import margin
from advbench.attacks.registry import ATTACKS, build_attack, register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import UsageError, require_positive
from advbench.core.seeding import sample_normal
from advbench.core.tensors import per_sample
from advbench.core.threat import Norm, batch_norm, project_l1

_DUAL = {Norm.L2: Norm.L2, Norm.LINF: Norm.L1, Norm.L1: Norm.LINF}


# --- Fast Minimum-Norm -------------------------------------------------------------------------


@dataclass(frozen=True)
class FMNConfig:
    steps: int = 100
    alpha_init: float = 1.0  # step size, cosine-annealed to alpha_final
    alpha_final: float | None = None  # None: alpha_init / 100
    gamma_init: float = 0.05  # epsilon update rate, cosine-annealed to gamma_final
    gamma_final: float = 0.001
    binary_search_steps: int = 10  # boundary search from the `init` attack's adversarials
    init: str = ""  # a registered minimum-norm attack to start from ("" starts at the clean input)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.binary_search_steps < 0:
            raise UsageError("fmn needs steps >= 1 and binary_search_steps >= 0")
        require_positive(
            "fmn",
            alpha_init=self.alpha_init,
            gamma_init=self.gamma_init,
            gamma_final=self.gamma_final,
        )
        if self.alpha_final is not None:
            require_positive("fmn", alpha_final=self.alpha_final)
        if self.init:
            spec = ATTACKS.get(self.init)  # unknown names fail here, with suggestions
            if not issubclass(spec.cls, MinimumNormAttack):
                raise UsageError(f"fmn init must be a minimum-norm attack, {self.init!r} is not")


def _keep_top(delta: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per-sample L0 projection: keep the k[i] largest-magnitude entries of row i."""
    flat = delta.flatten(1)
    order = flat.abs().argsort(dim=1, descending=True)
    positions = torch.arange(flat.shape[1], device=delta.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, positions)
    return (flat * (rank < k.view(-1, 1))).view_as(delta)


def _project(delta: torch.Tensor, eps: torch.Tensor, norm: Norm) -> torch.Tensor:
    if norm is Norm.LINF:
        e = per_sample(eps, delta)
        return torch.maximum(torch.minimum(delta, e), -e)
    if norm is Norm.L2:
        return delta * per_sample(
            (eps / batch_norm(delta, Norm.L2).clamp_min(1e-12)).clamp(max=1.0), delta
        )
    if norm is Norm.L1:
        return project_l1(delta, eps)
    return _keep_top(delta, eps)


def _mid_points(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Points between x0 (t=0) and x1 (t=1) along the norm's own path (Foolbox's FMN `mid_points`)."""
    delta, te = x1 - x0, per_sample(t, x0)
    if norm is Norm.LINF:
        return x0 + torch.maximum(torch.minimum(delta, te), -te)
    if norm is Norm.L2:
        return x0 + te * delta
    if norm is Norm.L1:
        threshold = 1 - te
        return x0 + torch.where(
            delta.abs() > threshold,
            delta.sign() * (delta.abs() - threshold),
            torch.zeros_like(delta),
        )
    return x0 + _keep_top(delta, (t * x0[0].numel()).floor())


@register_attack(
    "fmn",
    config=FMNConfig,
    family="minimum-norm",
    description="Fast Minimum-Norm attack (Pintor et al. 2021), L0/L1/L2/Linf",
)
class FMN(MinimumNormAttack):
    """Fast Minimum-Norm (Pintor et al. 2021) as in Foolbox 3's `L{0,1,2,Inf}FMNAttack` and the
    authors' adv_lib code. One deliberate difference: Foolbox's L2 version never projects (its
    factor is `min(1, norms / norms)`); here L2, like every norm, projects onto the eps-ball."""

    name = "fmn"
    norms = ("l0", "l1", "l2", "linf")

    def __init__(self, config: FMNConfig = FMNConfig()) -> None:
        self.config = config

    def _start(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        norm: Norm,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The initial perturbation (the boundary point towards the init attack's adversarial) and its cost."""
        _, init, _ = build_attack(self.config.init)
        if not isinstance(
            init, MinimumNormAttack
        ):  # (FMNConfig refuses such names; this tells the type checker)
            raise UsageError(f"fmn init must be a minimum-norm attack, {self.config.init!r} is not")
        # Any adversarial point will do as a start: an init attack without this norm runs in its first one.
        init_norm = norm if norm.value in init.norms else Norm(init.norms[0])
        x1, spent = init.run_unbounded(model, x, y, init_norm, indices, seed)
        lower, upper = torch.zeros(len(x), device=x.device), torch.ones(len(x), device=x.device)
        for _ in range(self.config.binary_search_steps):
            mid = (lower + upper) / 2
            is_adv = model.predict(_mid_points(x, x1, mid, norm)) != y
            lower, upper = torch.where(is_adv, lower, mid), torch.where(is_adv, mid, upper)
        # Where the init attack failed x1 is x, so the search leaves the start at x.
        return _mid_points(x, x1, upper, norm).clamp(
            0.0, 1.0
        ) - x, spent + self.config.binary_search_steps

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
        alpha_final = cfg.alpha_init / 100 if cfg.alpha_final is None else cfg.alpha_final
        x_adv, steps, todo = self.unbounded_start(model, x, y)
        if len(todo) == 0:
            return x_adv, steps
        x0, y0 = x[todo], y[todo]
        n = len(todo)
        delta = torch.zeros_like(x0)
        if cfg.init:
            delta, spent = self._start(model, x0, y0, norm, indices[todo], seed)
            steps[todo] += spent
        if norm is Norm.L0:
            eps = batch_norm(delta, Norm.L0).clamp_min(1)
            worst = torch.full((n,), float(x0[0].numel()), device=x.device)
        else:
            eps = torch.full((n,), float("inf"), device=x.device)
            worst = batch_norm(torch.maximum(x0, 1 - x0), norm)
        best_norm, best_delta = worst.clone(), delta.clone()
        adv_found = torch.zeros(n, dtype=torch.bool, device=x.device)
        for i in range(cfg.steps):
            cosine = (1 + math.cos(math.pi * i / cfg.steps)) / 2
            alpha = alpha_final + (cfg.alpha_init - alpha_final) * cosine
            gamma = cfg.gamma_final + (cfg.gamma_init - cfg.gamma_final) * cosine
            xa = (x0 + delta).requires_grad_(True)
            logits = model(xa)
            gap = margin(logits, y0)
            (grad,) = torch.autograd.grad(-gap.sum(), xa)
            gap = gap.detach()
            is_adv = logits.detach().argmax(1) != y0
            size = batch_norm(delta, norm)
            better = is_adv & (size <= best_norm)
            adv_found |= is_adv
            best_norm = torch.where(better, size, best_norm)
            best_delta = torch.where(per_sample(better, x0), delta, best_delta)
            if norm is Norm.L0:
                shrink = torch.minimum(
                    torch.minimum(eps - 1, (eps * (1 - gamma)).floor()), best_norm
                )
                eps = torch.where(
                    is_adv, shrink, torch.maximum(eps + 1, (eps * (1 + gamma)).floor())
                ).clamp_min(1)
            else:
                to_boundary = gap.abs() / batch_norm(grad, _DUAL[norm]).clamp_min(1e-12)
                grow = torch.where(adv_found, eps * (1 + gamma), size + to_boundary)
                eps = torch.where(is_adv, torch.minimum(eps * (1 - gamma), best_norm), grow)
            eps = torch.minimum(eps, worst)
            step = grad / per_sample(batch_norm(grad, Norm.L2).clamp_min(1e-12), grad)
            delta = _project(delta + alpha * step, eps, norm)
            delta = (x0 + delta).clamp(0.0, 1.0) - x0
        steps[todo] += cfg.steps
        x_adv[todo] = (x0 + best_delta).clamp(0.0, 1.0)
        return x_adv, steps


# --- Decoupled Direction and Norm ---------------------------------------------------------------


@dataclass(frozen=True)
class DDNConfig:
    steps: int = 100
    init_epsilon: float = 1.0
    gamma: float = 0.05  # the norm grows or shrinks by this factor each step

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UsageError("ddn needs steps >= 1")
        require_positive("ddn", init_epsilon=self.init_epsilon, gamma=self.gamma)
        if self.gamma >= 1:
            raise UsageError(f"ddn gamma must be below 1, got {self.gamma}")


@register_attack(
    "ddn",
    config=DDNConfig,
    family="minimum-norm",
    description="Decoupled Direction and Norm L2 attack (Rony et al. 2019)",
)
class DDN(MinimumNormAttack):
    """Foolbox 3 `DDNAttack` semantics: a normalized CE-gradient step (cosine-annealed from 1 to 0.01),
    then the perturbation is rescaled to a norm eps that shrinks by (1 - gamma) while adversarial and
    grows by (1 + gamma) otherwise. Zero gradients are replaced by index-seeded Gaussian noise."""

    name = "ddn"
    norms = ("l2",)

    def __init__(self, config: DDNConfig = DDNConfig()) -> None:
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
        if len(todo) == 0:
            return x_adv, steps
        x0, y0 = x[todo], y[todo]
        n = len(todo)
        delta = torch.zeros_like(x0)
        eps = torch.full((n,), cfg.init_epsilon, device=x.device)
        worst = batch_norm(torch.maximum(x0, 1 - x0), Norm.L2)
        best_norm, best_delta = worst.clone(), delta.clone()
        for i in range(cfg.steps):
            stepsize = 0.01 + (1.0 - 0.01) * (1 + math.cos(math.pi * i / cfg.steps)) / 2
            xa = (x0 + delta).requires_grad_(True)
            logits = model(xa)
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, y0, reduction="sum"), xa)
            # Drawn for every row, used where the gradient vanished: asking whether any did would
            # wait for the device each step.
            zero = batch_norm(grad, Norm.L2) == 0
            noise = sample_normal(
                seed, indices[todo], tuple(x.shape[1:]), stream=i, device=x.device
            )
            grad = torch.where(per_sample(zero, grad), noise, grad)
            grad = grad / per_sample(batch_norm(grad, Norm.L2).clamp_min(1e-12), grad)
            is_adv = logits.detach().argmax(1) != y0
            size = batch_norm(delta, Norm.L2)
            better = is_adv & (size <= best_norm)
            best_norm = torch.where(better, size, best_norm)
            best_delta = torch.where(per_sample(better, x0), delta, best_delta)
            delta = delta + stepsize * grad
            eps = torch.minimum(eps * torch.where(is_adv, 1.0 - cfg.gamma, 1.0 + cfg.gamma), worst)
            delta = delta * per_sample(eps / batch_norm(delta, Norm.L2).clamp_min(1e-12), delta)
            delta = (x0 + delta).clamp(0.0, 1.0) - x0
        steps[todo] += cfg.steps
        x_adv[todo] = (x0 + best_delta).clamp(0.0, 1.0)
        return x_adv, steps
