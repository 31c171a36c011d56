"""Minimum-norm attacks: DeepFool, Carlini & Wagner L2, Fast Minimum-Norm (FMN) and DDN.

Each looks for the smallest perturbation that changes the prediction, so one run yields the
accuracy at every eps (`MinimumNormAttack.minimize` / `at_eps`). All are batched: the loops run
over iterations only, each over the samples still being attacked. Samples the model already
misclassifies are never attacked (their minimum norm is 0), and where no adversarial example is
found the clean input is returned. The update rules follow Foolbox 3.3 (see each class for the
few places where we deliberately differ), so results can be checked against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from advbench.attacks.base import MinimumNormAttack
from advbench.attacks.registry import ATTACKS, build_attack, register_attack
from advbench.core.errors import UsageError
from advbench.core.seeding import sample_normal
from advbench.core.threat import Norm, batch_norm, project_l1
from advbench.models.wrapper import RobustModel

_DUAL = {Norm.L2: Norm.L2, Norm.LINF: Norm.L1, Norm.L1: Norm.LINF}


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Label logit minus the largest other logit: negative exactly where the sample is misclassified."""
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
    return logits.gather(1, y.view(-1, 1)).squeeze(1) - other


def _check_positive(name: str, **values: float) -> None:
    for key, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"{name} {key} must be a positive number, got {value}")


# --- DeepFool -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeepFoolConfig:
    steps: int = 50
    overshoot: float = 0.02
    candidates: int = 10  # the top-k classes (at the clean input) considered for the boundary

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UsageError("deepfool needs steps >= 1")
        if self.candidates < 2:
            raise UsageError("deepfool needs candidates >= 2 (the predicted class and at least one other)")
        if not (math.isfinite(self.overshoot) and self.overshoot >= 0):
            raise UsageError("deepfool overshoot must be a number >= 0")


@register_attack(
    "deepfool", config=DeepFoolConfig, family="minimum-norm", description="DeepFool (Moosavi-Dezfooli et al.), logit differences, top-k classes"
)
class DeepFool(MinimumNormAttack):
    """Foolbox 3 `L2DeepFoolAttack` / `LinfDeepFoolAttack` semantics: linearize the logit differences to
    the top-k classes, step to the nearest linearized boundary (+1e-4), and apply the accumulated step
    times (1 + overshoot) to the clean input, clipped to [0,1]. A sample stops once misclassified."""

    name = "deepfool"
    norms = ("l2", "linf")

    def __init__(self, config: DeepFoolConfig = DeepFoolConfig()) -> None:
        self.config = config

    def run_unbounded(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, norm: Norm, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        steps = torch.zeros(len(x), dtype=torch.int64, device=x.device)
        x_adv = x.clone()
        with torch.no_grad():
            logits = model(x)
        k = min(cfg.candidates, logits.shape[1])
        classes = logits.argsort(dim=1, descending=True)[:, :k]  # column 0: the clean prediction
        p_total = torch.zeros_like(x)
        active = (logits.argmax(1) == y).nonzero().view(-1)
        for _ in range(cfg.steps):
            if len(active) == 0:
                break
            xa = x_adv[active].requires_grad_(True)
            logits = model(xa)
            keep = logits.argmax(1) == y[active]
            if not bool(keep.all()):
                active, logits = active[keep], logits[keep]
                if len(active) == 0:
                    break
            cls = classes[active]
            diffs = logits.gather(1, cls[:, 1:]) - logits.gather(1, cls[:, :1])  # (m, k-1), negative
            grads = torch.stack(
                [torch.autograd.grad(diffs[:, j].sum(), xa, retain_graph=j < k - 2)[0][keep] for j in range(k - 1)], dim=1
            )
            flat = grads.flatten(2)
            dual = flat.norm(dim=2) if norm is Norm.L2 else flat.abs().sum(dim=2)
            distances = diffs.detach().abs() / (dual + 1e-8)
            best = distances.argmin(dim=1)
            rows = torch.arange(len(active), device=x.device)
            dist, grad = distances[rows, best] + 1e-4, grads[rows, best]
            if norm is Norm.L2:
                step = _expand(dist / (batch_norm(grad, Norm.L2) + 1e-8), grad) * grad
            else:
                step = _expand(dist, grad) * grad.sign()
            p_total[active] += step
            x_adv[active] = (x[active] + (1.0 + cfg.overshoot) * p_total[active]).clamp(0.0, 1.0)
            steps[active] += 1
        if len(active):
            # The last step is not checked inside the loop; a sample it did not break keeps x.
            failed = active[model.predict(x_adv[active]) == y[active]]
            x_adv[failed] = x[failed]
        return x_adv, steps


# --- Carlini & Wagner L2 ------------------------------------------------------------------------


@dataclass(frozen=True)
class CWConfig:
    binary_search_steps: int = 9
    steps: int = 1000  # Adam steps per binary-search step (Foolbox's default is 10000)
    stepsize: float = 0.01
    confidence: float = 0.0
    initial_const: float = 0.001
    abort_early: bool = True

    def __post_init__(self) -> None:
        if self.binary_search_steps < 1 or self.steps < 1:
            raise UsageError("cw needs binary_search_steps >= 1 and steps >= 1")
        _check_positive("cw", stepsize=self.stepsize, initial_const=self.initial_const)
        if not (math.isfinite(self.confidence) and self.confidence >= 0):
            raise UsageError("cw confidence must be a number >= 0")


@register_attack(
    "cw", config=CWConfig, family="minimum-norm", description="Carlini & Wagner L2 (tanh space, Adam, binary search over the constant c)"
)
class CarliniWagnerL2(MinimumNormAttack):
    """Foolbox 3 `L2CarliniWagnerAttack` semantics, with one difference: abort-early is decided per
    sample (its own loss stalled over a tenth of the steps), not on the loss summed over the batch,
    so a sample's result does not depend on the batch it runs in."""

    name = "cw"
    norms = ("l2",)

    def __init__(self, config: CWConfig = CWConfig()) -> None:
        self.config = config

    def run_unbounded(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, norm: Norm, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        best_adv, steps, todo = self.unbounded_start(model, x, y)
        if len(todo) == 0:
            return best_adv, steps
        x0, y0 = x[todo], y[todo]
        n = len(todo)
        w0 = torch.atanh((2 * x0 - 1) * 0.999999)  # attack space: x = (tanh(w) + 1) / 2
        x_rec = (torch.tanh(w0) + 1) / 2
        best_norm = torch.full((n,), float("inf"), device=x.device)
        best = x0.clone()
        consts = torch.full((n,), cfg.initial_const, dtype=torch.float64, device=x.device)
        lower = torch.zeros_like(consts)
        upper = torch.full_like(consts, float("inf"))
        check_every = math.ceil(cfg.steps / 10)
        beta1, beta2 = 0.9, 0.999
        for search in range(cfg.binary_search_steps):
            if search == cfg.binary_search_steps - 1 and cfg.binary_search_steps >= 10:
                consts = upper.clamp(max=1e10)  # the last step repeats the best constant found
            c = consts.to(x.dtype)
            delta, m, v = torch.zeros_like(x0), torch.zeros_like(x0), torch.zeros_like(x0)
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            previous = torch.full((n,), float("inf"), device=x.device)
            active = torch.arange(n, device=x.device)
            for step in range(cfg.steps):
                d = delta[active].requires_grad_(True)
                xa = (torch.tanh(w0[active] + d) + 1) / 2
                logits = model(xa)
                ya = y0[active]
                adv_loss = (_margin(logits, ya) + cfg.confidence).clamp_min(0) * c[active]
                loss = adv_loss + (xa - x_rec[active]).flatten(1).pow(2).sum(dim=1)
                (grad,) = torch.autograd.grad(loss.sum(), d)
                t = step + 1
                m[active] = beta1 * m[active] + (1 - beta1) * grad
                v[active] = beta2 * v[active] + (1 - beta2) * grad**2
                m_hat, v_hat = m[active] / (1 - beta1**t), v[active] / (1 - beta2**t)
                delta[active] = delta[active] - cfg.stepsize * m_hat / (v_hat.sqrt() + 1e-8)
                steps[todo[active]] += 1
                loss = loss.detach()
                go_on = torch.ones(len(active), dtype=torch.bool, device=x.device)
                if cfg.abort_early and step % check_every == 0:
                    go_on = loss <= 0.9999 * previous[active]  # no progress: stop this sample's Adam run
                    previous[active] = loss
                logits, xa = logits.detach(), xa.detach()
                # Adversarial with the required confidence: the label logit plus it still loses.
                is_adv = go_on & ((logits + cfg.confidence * F.one_hot(ya, logits.shape[1])).argmax(1) != ya)
                found[active] |= is_adv
                dist = (xa - x0[active]).flatten(1).norm(dim=1)
                better = is_adv & (dist < best_norm[active])
                if bool(better.any()):
                    best_norm[active[better]] = dist[better]
                    best[active[better]] = xa[better]
                active = active[go_on]
                if len(active) == 0:
                    break
            upper = torch.where(found, consts, upper)
            lower = torch.where(found, lower, consts)
            consts = torch.where(upper.isinf(), consts * 10, (lower + upper) / 2)
        best_adv[todo] = best
        return best_adv, steps


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
        _check_positive("fmn", alpha_init=self.alpha_init, gamma_init=self.gamma_init, gamma_final=self.gamma_final)
        if self.alpha_final is not None:
            _check_positive("fmn", alpha_final=self.alpha_final)
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
        e = _expand(eps, delta)
        return torch.maximum(torch.minimum(delta, e), -e)
    if norm is Norm.L2:
        return delta * _expand((eps / batch_norm(delta, Norm.L2).clamp_min(1e-12)).clamp(max=1.0), delta)
    if norm is Norm.L1:
        return project_l1(delta, eps)
    return _keep_top(delta, eps)


def _mid_points(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Points between x0 (t=0) and x1 (t=1) along the norm's own path (Foolbox's FMN `mid_points`)."""
    delta, te = x1 - x0, _expand(t, x0)
    if norm is Norm.LINF:
        return x0 + torch.maximum(torch.minimum(delta, te), -te)
    if norm is Norm.L2:
        return x0 + te * delta
    if norm is Norm.L1:
        threshold = 1 - te
        return x0 + torch.where(delta.abs() > threshold, delta.sign() * (delta.abs() - threshold), torch.zeros_like(delta))
    return x0 + _keep_top(delta, (t * x0[0].numel()).floor())


@register_attack("fmn", config=FMNConfig, family="minimum-norm", description="Fast Minimum-Norm attack (Pintor et al. 2021), L0/L1/L2/Linf")
class FMN(MinimumNormAttack):
    """Fast Minimum-Norm (Pintor et al. 2021) as in Foolbox 3's `L{0,1,2,Inf}FMNAttack` and the
    authors' adv_lib code. One deliberate difference: Foolbox's L2 version never projects (its
    factor is `min(1, norms / norms)`); here L2, like every norm, projects onto the eps-ball."""

    name = "fmn"
    norms = ("l0", "l1", "l2", "linf")

    def __init__(self, config: FMNConfig = FMNConfig()) -> None:
        self.config = config

    def _start(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, norm: Norm, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The initial perturbation (the boundary point towards the init attack's adversarial) and its cost."""
        _, init, _ = build_attack(self.config.init)
        # Any adversarial point will do as a start: an init attack without this norm runs in its first one.
        init_norm = norm if norm.value in init.norms else Norm(init.norms[0])
        x1, spent = init.run_unbounded(model, x, y, init_norm, indices, seed)  # type: ignore[attr-defined]
        lower, upper = torch.zeros(len(x), device=x.device), torch.ones(len(x), device=x.device)
        for _ in range(self.config.binary_search_steps):
            mid = (lower + upper) / 2
            is_adv = model.predict(_mid_points(x, x1, mid, norm)) != y
            lower, upper = torch.where(is_adv, lower, mid), torch.where(is_adv, mid, upper)
        # Where the init attack failed x1 is x, so the search leaves the start at x.
        return _mid_points(x, x1, upper, norm).clamp(0.0, 1.0) - x, spent + self.config.binary_search_steps

    def run_unbounded(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, norm: Norm, indices: torch.Tensor, seed: int
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
            margin = _margin(logits, y0)
            (grad,) = torch.autograd.grad(-margin.sum(), xa)
            margin = margin.detach()
            is_adv = logits.detach().argmax(1) != y0
            size = batch_norm(delta, norm)
            better = is_adv & (size <= best_norm)
            adv_found |= is_adv
            best_norm = torch.where(better, size, best_norm)
            best_delta = torch.where(_expand(better, x0), delta, best_delta)
            if norm is Norm.L0:
                shrink = torch.minimum(torch.minimum(eps - 1, (eps * (1 - gamma)).floor()), best_norm)
                eps = torch.where(is_adv, shrink, torch.maximum(eps + 1, (eps * (1 + gamma)).floor())).clamp_min(1)
            else:
                to_boundary = margin.abs() / batch_norm(grad, _DUAL[norm]).clamp_min(1e-12)
                grow = torch.where(adv_found, eps * (1 + gamma), size + to_boundary)
                eps = torch.where(is_adv, torch.minimum(eps * (1 - gamma), best_norm), grow)
            eps = torch.minimum(eps, worst)
            step = grad / _expand(batch_norm(grad, Norm.L2).clamp_min(1e-12), grad)
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
        _check_positive("ddn", init_epsilon=self.init_epsilon, gamma=self.gamma)
        if self.gamma >= 1:
            raise UsageError(f"ddn gamma must be below 1, got {self.gamma}")


@register_attack("ddn", config=DDNConfig, family="minimum-norm", description="Decoupled Direction and Norm L2 attack (Rony et al. 2019)")
class DDN(MinimumNormAttack):
    """Foolbox 3 `DDNAttack` semantics: a normalized CE-gradient step (cosine-annealed from 1 to 0.01),
    then the perturbation is rescaled to a norm eps that shrinks by (1 - gamma) while adversarial and
    grows by (1 + gamma) otherwise. Zero gradients are replaced by index-seeded Gaussian noise."""

    name = "ddn"
    norms = ("l2",)

    def __init__(self, config: DDNConfig = DDNConfig()) -> None:
        self.config = config

    def run_unbounded(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, norm: Norm, indices: torch.Tensor, seed: int
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
            zero = batch_norm(grad, Norm.L2) == 0
            if bool(zero.any()):
                noise = sample_normal(seed, indices[todo], tuple(x.shape[1:]), stream=i, device=x.device)
                grad = torch.where(_expand(zero, grad), noise, grad)
            grad = grad / _expand(batch_norm(grad, Norm.L2).clamp_min(1e-12), grad)
            is_adv = logits.detach().argmax(1) != y0
            size = batch_norm(delta, Norm.L2)
            better = is_adv & (size <= best_norm)
            best_norm = torch.where(better, size, best_norm)
            best_delta = torch.where(_expand(better, x0), delta, best_delta)
            delta = delta + stepsize * grad
            eps = torch.minimum(eps * torch.where(is_adv, 1.0 - cfg.gamma, 1.0 + cfg.gamma), worst)
            delta = delta * _expand(eps / batch_norm(delta, Norm.L2).clamp_min(1e-12), delta)
            delta = (x0 + delta).clamp(0.0, 1.0) - x0
        steps[todo] += cfg.steps
        x_adv[todo] = (x0 + best_delta).clamp(0.0, 1.0)
        return x_adv, steps
