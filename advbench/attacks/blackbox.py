"""Score- and decision-based black-box attacks, and random-noise baselines.

Native attacks (Square, ZOO, noise) are batched: every iteration queries all still-robust
samples of the batch together, and a sample stops spending queries once it is misclassified.
Their randomness comes from the index-seeded samplers of `advbench.core.seeding`, so a sample's
result depends only on its dataset index and the seed, never on the rest of the batch.
`steps` counts model queries per sample.

HopSkipJump, Boundary and salt-and-pepper run through Foolbox 3 (`foolbox_adapter`); they are
reproducible per batch, not per sample (Foolbox draws from torch's global generator, seeded
from the run seed inside the call).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import torch

from advbench.attacks.base import Attack, MinimumNormAttack
from advbench.attacks.foolbox_adapter import foolbox_minimize
from advbench.attacks.registry import register_attack
from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed, sample_normal, sample_uniform
from advbench.core.threat import Norm, ThreatModel, batch_norm
from advbench.models.wrapper import RobustModel

# Rows per forward pass where one step evaluates many points per sample (ZOO).
MAX_ROWS = 4096


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """C&W margin: true-class logit minus the best other logit (< 0 means misclassified)."""
    true = logits.gather(1, y.view(-1, 1)).view(-1)
    other = logits.scatter(1, y.view(-1, 1), float("-inf")).amax(dim=1)
    return true - other


def _positive_finite(value: float) -> bool:
    return value > 0 and math.isfinite(value)


# --------------------------------------------------------------------------------------------
# Square Attack
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SquareConfig:
    n_queries: int = 5000
    p_init: float = 0.8
    restarts: int = 1

    def __post_init__(self) -> None:
        if self.n_queries < 1 or self.restarts < 1:
            raise UsageError("square needs n_queries >= 1 and restarts >= 1")
        if not (0 < self.p_init <= 1):
            raise UsageError(f"square p_init must be in (0, 1], got {self.p_init}")


def p_schedule(p_init: float, it: int, n_queries: int) -> float:
    """The authors' piecewise-constant schedule of the square's area fraction, rescaled to n_queries."""
    it = int(it / n_queries * 10000)
    for bound, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256)):
        if it <= bound:
            return p_init / div
    return p_init / 512


def _rectangles(rows: int, cols: int) -> torch.Tensor:
    """The authors' L2 'eta_rectangles' pattern: nested rectangles weighted 1/(k+1)^2, unit L2 norm."""
    delta = torch.zeros(rows, cols, dtype=torch.float64)
    r, c = rows // 2, cols // 2
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
        delta[max(r, 0) : min(r + 2 * k + 1, rows), max(c, 0) : min(c + 2 * k + 1, cols)] += 1.0 / (k + 1) ** 2
        r, c = r - 1, c - 1
    return delta / delta.pow(2).sum().sqrt()


@lru_cache(maxsize=64)
def _eta(s: int) -> torch.Tensor:
    """The authors' s x s L2 update pattern: two opposite-signed halves, unit L2 norm (CPU, float32)."""
    delta = torch.zeros(s, s, dtype=torch.float64)
    if s // 2:
        delta[: s // 2] = _rectangles(s // 2, s)
    delta[s // 2 :] = -_rectangles(s - s // 2, s)
    return (delta / delta.pow(2).sum().sqrt()).float()


def _signs(u: torch.Tensor) -> torch.Tensor:
    """+1 / -1 from uniforms (the hashed uniforms never equal 0.5 exactly)."""
    return torch.where(u < 0.5, -1.0, 1.0).to(u.dtype)


def _offsets(u: torch.Tensor, size: int, s: int) -> torch.Tensor:
    """Top-left corners, uniform over the size - s + 1 valid positions."""
    return (u * (size - s + 1)).long().clamp(0, size - s)


def _window(top: torch.Tensor, left: torch.Tensor, s: int, h: int, w: int) -> torch.Tensor:
    """Boolean (n, 1, h, w) masks of each sample's s x s square."""
    rows = torch.arange(h, device=top.device)
    cols = torch.arange(w, device=top.device)
    r = (rows >= top.view(-1, 1)) & (rows < top.view(-1, 1) + s)
    c = (cols >= left.view(-1, 1)) & (cols < left.view(-1, 1) + s)
    return (r.unsqueeze(2) & c.unsqueeze(1)).unsqueeze(1)


def _patch_index(top: torch.Tensor, left: torch.Tensor, s: int, c: int) -> tuple[torch.Tensor, ...]:
    """Advanced-indexing tuple addressing each sample's (c, s, s) square."""
    n, dev = len(top), top.device
    ar = torch.arange(s, device=dev)
    rows = (top.view(-1, 1) + ar).view(n, 1, s, 1)
    cols = (left.view(-1, 1) + ar).view(n, 1, 1, s)
    return torch.arange(n, device=dev).view(n, 1, 1, 1), torch.arange(c, device=dev).view(1, c, 1, 1), rows, cols


@register_attack(
    "square",
    config=SquareConfig,
    family="black-box",
    description="Square Attack (Andriushchenko et al. 2020), score-based random search, margin loss; reports queries as steps",
)
class Square(Attack):
    """Square Attack, batched, with per-sample squares drawn from index-seeded randomness.

    Follows the authors' implementation (fra31/auto-attack `square.py`): the same
    initializations (vertical stripes for Linf, the grid of 'eta' blocks for L2), the same
    update rules and p schedule, margin loss, a proposal kept when it lowers the margin or
    misclassifies. Differences: each sample draws its own square positions (the authors share
    one position across the batch), positions cover all h - s + 1 offsets, and n_queries caps
    all queries of a restart, initialization included.
    """

    name = "square"

    def __init__(self, config: SquareConfig = SquareConfig()) -> None:
        self.config = config

    def run(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_best = x.clone()
        steps = torch.zeros(len(x), dtype=torch.int64, device=x.device)
        broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        if threat.eps == 0:
            return x_best, steps
        for restart in range(self.config.restarts):
            todo = (~broken).nonzero().view(-1)
            if len(todo) == 0:
                break
            key = derive_seed("square", seed, restart)
            with torch.no_grad():
                x_adv, hit, used = self._single_run(model, x[todo], y[todo], threat, indices[todo], key)
            # Samples no restart breaks keep the last restart's best point.
            x_best[todo] = x_adv
            broken[todo] = hit
            steps[todo] += used
        return x_best, steps

    def _init(self, x: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, key: int) -> torch.Tensor:
        n, c, h, w = x.shape
        eps = threat.eps
        if threat.norm is Norm.LINF:
            # Vertical stripes of +-eps, one sign per (channel, column).
            u = sample_uniform(key, indices, (c, 1, w), stream=0, device=x.device)
            return (x + eps * _signs(u)).clamp(0.0, 1.0)
        # L2: a grid of s0 x s0 'eta' blocks, each with its own sign per channel and orientation.
        s0 = max(min(h, w) // 5, 1)
        nbh, nbw = h // s0, w // s0
        top, left = max((h - 5 * s0) // 2, 0), max((w - 5 * s0) // 2, 0)
        u = sample_uniform(key, indices, (nbh, nbw, c + 1), stream=0, device=x.device)
        eta = _eta(s0).to(x.device)
        flip = (u[..., c] > 0.5).view(n, 1, nbh, nbw, 1, 1)
        blocks = torch.where(flip, eta.t(), eta) * _signs(u[..., :c]).permute(0, 3, 1, 2).reshape(n, c, nbh, nbw, 1, 1)
        grid = blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, c, nbh * s0, nbw * s0)
        delta = torch.zeros_like(x)
        rows, cols = min(h - top, nbh * s0), min(w - left, nbw * s0)
        delta[:, :, top : top + rows, left : left + cols] = grid[:, :, :rows, :cols]
        delta = delta / _expand(batch_norm(delta, Norm.L2) + 1e-12, x)
        return (x + delta * eps).clamp(0.0, 1.0)

    def _propose(self, x: torch.Tensor, x_best: torch.Tensor, threat: ThreatModel, u: torch.Tensor, p: float) -> torch.Tensor:
        n, c, h, w = x.shape
        eps = threat.eps
        if threat.norm is Norm.LINF:
            s = min(max(round(math.sqrt(p * h * w)), 1), h, w)
            inside = _window(_offsets(u[:, 0], h, s), _offsets(u[:, 1], w, s), s, h, w)
            step = 2.0 * eps * _signs(u[:, 5 : 5 + c]).view(n, c, 1, 1)
            x_new = torch.where(inside, x_best + step, x_best)
            return torch.minimum(torch.maximum(x_new, x - eps), x + eps).clamp(0.0, 1.0)
        s = max(round(math.sqrt(p * h * w)), 3)
        s = min(s + 1 if s % 2 == 0 else s, h, w)
        top1, left1 = _offsets(u[:, 0], h, s), _offsets(u[:, 1], w, s)
        top2, left2 = _offsets(u[:, 2], h, s), _offsets(u[:, 3], w, s)
        delta = x_best - x
        at1 = _patch_index(top1, left1, s, c)
        old = delta[at1]
        norm_old = old.pow(2).sum(dim=(-2, -1), keepdim=True).sqrt()
        norm_image = _expand(batch_norm(delta, Norm.L2), x)
        both = _window(top1, left1, s, h, w) | _window(top2, left2, s, h, w)
        norm_windows = (delta * both).pow(2).sum(dim=(-2, -1), keepdim=True).sqrt()
        eta = _eta(s).to(x.device)
        flip = (u[:, 4] > 0.5).view(n, 1, 1, 1)
        new = torch.where(flip, eta.t(), eta) * _signs(u[:, 5 : 5 + c]).view(n, c, 1, 1) + old / (1e-12 + norm_old)
        budget = ((eps**2 - norm_image**2).clamp_min(0.0) / c + norm_windows**2).sqrt()
        new = new / (1e-12 + new.pow(2).sum(dim=(-2, -1), keepdim=True).sqrt()) * budget
        delta = torch.where(_window(top2, left2, s, h, w), torch.zeros_like(delta), delta)
        delta[at1] = new
        delta = delta / _expand(batch_norm(delta, Norm.L2) + 1e-12, x) * eps
        return (x + delta).clamp(0.0, 1.0)

    def _single_run(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, key: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.config
        n, c = len(x), x.shape[1]
        x_best = self._init(x, threat, indices, key)
        logits = model(x_best)
        best = margin(logits, y)
        hit = logits.argmax(1) != y
        used = torch.ones(n, dtype=torch.int64, device=x.device)
        active = (~hit).nonzero().view(-1)
        for it in range(1, cfg.n_queries):
            if len(active) == 0:
                break
            p = p_schedule(cfg.p_init, it - 1, cfg.n_queries)
            u = sample_uniform(key, indices[active], (5 + c,), stream=it, device=x.device)
            x_new = self._propose(x[active], x_best[active], threat, u, p)
            logits = model(x_new)
            m = margin(logits, y[active])
            fooled = logits.argmax(1) != y[active]
            better = (m < best[active]) | fooled
            x_best[active] = torch.where(_expand(better, x_new), x_new, x_best[active])
            best[active] = torch.where(better, m, best[active])
            used[active] += 1
            hit[active[fooled]] = True
            active = active[~fooled]
        return x_best, hit, used


# --------------------------------------------------------------------------------------------
# ZOO
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZOOConfig:
    steps: int = 200
    coordinates: int = 128  # coordinates estimated per step (2 queries each)
    h: float = 1e-4  # finite-difference step
    lr: float = 0.01  # ADAM learning rate

    def __post_init__(self) -> None:
        if self.steps < 1 or self.coordinates < 1:
            raise UsageError("zoo needs steps >= 1 and coordinates >= 1")
        if not (_positive_finite(self.h) and _positive_finite(self.lr)):
            raise UsageError("zoo h and lr must be positive numbers")


def _probe(
    model: RobustModel, flat: torch.Tensor, coords: torch.Tensor, plus: torch.Tensor, minus: torch.Tensor, y: torch.Tensor, shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Margins and predictions at each sample's iterate, then at its k coordinates moved to `plus`,
    then to `minus`: (n, 2k + 1) each. Built and evaluated in chunks of about MAX_ROWS rows."""
    n, k = coords.shape
    per = max(1, MAX_ROWS // (2 * k + 1))
    margins, preds = [], []
    for start in range(0, n, per):
        part = slice(start, start + per)
        points = flat[part].unsqueeze(1).repeat(1, 2 * k + 1, 1)
        idx = coords[part].unsqueeze(2)
        points[:, 1 : k + 1].scatter_(2, idx, plus[part].unsqueeze(2))
        points[:, k + 1 :].scatter_(2, idx, minus[part].unsqueeze(2))
        logits = model(points.view(-1, *shape))
        margins.append(margin(logits, y[part].repeat_interleave(2 * k + 1)).view(-1, 2 * k + 1))
        preds.append(logits.argmax(1).view(-1, 2 * k + 1))
    return torch.cat(margins), torch.cat(preds)


@register_attack(
    "zoo",
    config=ZOOConfig,
    family="black-box",
    description="ZOO-ADAM (Chen et al. 2017): coordinate finite differences of the C&W margin, in the eps-ball; reports queries as steps",
)
class ZOO(Attack):
    """ZOO-ADAM within a fixed eps-ball.

    Each step picks `coordinates` random coordinates per sample, estimates the margin's partial
    derivatives by symmetric finite differences (x +- h e_i, clipped to [0,1]), takes one ADAM
    step on those coordinates (per-coordinate moments and counters), and projects onto the
    eps-ball and [0,1]. Each step queries 2 * coordinates + 1 points per sample (the +1 checks
    the current iterate, and samples found misclassified stop). The margin is not clipped at
    -kappa (kappa = inf), and ZOO's attack-space reduction and importance sampling are left out.
    """

    name = "zoo"

    def __init__(self, config: ZOOConfig = ZOOConfig()) -> None:
        self.config = config

    def run(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        n, d = len(x), x[0].numel()
        x_adv = x.clone()
        steps = torch.zeros(n, dtype=torch.int64, device=x.device)
        if threat.eps == 0 or n == 0:
            return x_adv, steps
        k = min(cfg.coordinates, d)
        key = derive_seed("zoo", seed)
        beta1, beta2 = 0.9, 0.999
        mom = torch.zeros(n, d, device=x.device)
        vel = torch.zeros(n, d, device=x.device)
        count = torch.zeros(n, d, device=x.device)
        active = torch.arange(n, device=x.device)
        with torch.no_grad():
            for it in range(cfg.steps):
                flat = x_adv[active].flatten(1)
                na = len(active)
                if k < d:
                    coords = sample_uniform(key, indices[active], (d,), stream=it, device=x.device).topk(k, dim=1).indices
                else:
                    coords = torch.arange(d, device=x.device).expand(na, d)
                cur = flat.gather(1, coords)
                plus, minus = (cur + cfg.h).clamp(0.0, 1.0), (cur - cfg.h).clamp(0.0, 1.0)
                margins, preds = _probe(model, flat, coords, plus, minus, y[active], tuple(x.shape[1:]))
                steps[active] += 2 * k + 1
                keep = preds[:, 0] == y[active]  # the current iterate is still classified correctly
                active, coords, cur, margins = active[keep], coords[keep], cur[keep], margins[keep]
                plus, minus = plus[keep], minus[keep]
                if len(active) == 0:
                    break
                grad = (margins[:, 1 : k + 1] - margins[:, k + 1 :]) / (plus - minus)
                m = beta1 * mom[active].gather(1, coords) + (1 - beta1) * grad
                v = beta2 * vel[active].gather(1, coords) + (1 - beta2) * grad**2
                t = count[active].gather(1, coords) + 1
                mom[active] = mom[active].scatter(1, coords, m)
                vel[active] = vel[active].scatter(1, coords, v)
                count[active] = count[active].scatter(1, coords, t)
                m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
                updated = flat[keep].scatter(1, coords, cur - cfg.lr * m_hat / (v_hat.sqrt() + 1e-8))
                x_adv[active] = threat.project(x[active], updated.view(-1, *x.shape[1:]))
        return x_adv, steps


# --------------------------------------------------------------------------------------------
# Random noise baselines
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseConfig:
    draws: int = 20

    def __post_init__(self) -> None:
        if self.draws < 1:
            raise UsageError(f"noise attacks need draws >= 1, got {self.draws}")


class _Noise(Attack):
    """Up to `draws` random points per sample; the first one the model misclassifies is kept."""

    def __init__(self, config: NoiseConfig = NoiseConfig()) -> None:
        self.config = config

    def l2_direction(self, seed: int, indices: torch.Tensor, shape: tuple[int, ...], draw: int, device: torch.device) -> torch.Tensor:
        raise NotImplementedError

    def run(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = x.clone()
        steps = torch.zeros(len(x), dtype=torch.int64, device=x.device)
        if threat.eps == 0:
            return x_adv, steps
        key = derive_seed(self.name, seed)
        shape = tuple(x.shape[1:])
        active = torch.arange(len(x), device=x.device)
        with torch.no_grad():
            for draw in range(self.config.draws):
                if len(active) == 0:
                    break
                if threat.norm is Norm.LINF:
                    delta = (2 * sample_uniform(key, indices[active], shape, stream=draw, device=x.device) - 1) * threat.eps
                else:
                    direction = self.l2_direction(key, indices[active], shape, draw, x.device)
                    delta = direction / _expand(batch_norm(direction, Norm.L2).clamp_min(1e-12), direction) * threat.eps
                candidate = threat.project(x[active], x[active] + delta)
                fooled = model(candidate).argmax(1) != y[active]
                steps[active] += 1
                x_adv[active[fooled]] = candidate[fooled]
                active = active[~fooled]
        return x_adv, steps


@register_attack(
    "gaussian-noise",
    config=NoiseConfig,
    family="noise",
    description="Random-noise baseline: Linf uniform in the ball, L2 Gaussian direction on the eps-sphere; first fooling draw kept",
)
class GaussianNoise(_Noise):
    name = "gaussian-noise"

    def l2_direction(self, seed: int, indices: torch.Tensor, shape: tuple[int, ...], draw: int, device: torch.device) -> torch.Tensor:
        return sample_normal(seed, indices, shape, stream=draw, device=device)


@register_attack(
    "uniform-noise",
    config=NoiseConfig,
    family="noise",
    description="Random-noise baseline: Linf uniform in the ball, L2 uniform-cube direction on the eps-sphere (as Foolbox)",
)
class UniformNoise(_Noise):
    name = "uniform-noise"

    def l2_direction(self, seed: int, indices: torch.Tensor, shape: tuple[int, ...], draw: int, device: torch.device) -> torch.Tensor:
        return 2 * sample_uniform(seed, indices, shape, stream=draw, device=device) - 1


# --------------------------------------------------------------------------------------------
# Foolbox-backed decision-based attacks (minimum norm)
# --------------------------------------------------------------------------------------------


class _FoolboxMinimumNorm(MinimumNormAttack):
    """Runs a Foolbox minimization attack; reproducible per batch (same batch, seed, device), not per sample."""

    needs_start: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        self.config = config

    def make(self, norm: Norm) -> Any:
        raise NotImplementedError

    def run_unbounded(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, norm: Norm, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return foolbox_minimize(lambda: self.make(norm), model, x, y, seed, self.name, needs_start=self.needs_start)


@dataclass(frozen=True)
class HopSkipJumpConfig:
    # Foolbox's defaults are steps=64, initial_gradient_eval_steps=100, max_gradient_eval_steps=10000
    # (~35k queries per sample); ours spend ~5k (16 steps of 100*sqrt(step) gradient queries plus
    # searches), which CPU runs can afford. The cap only binds when steps > 100.
    steps: int = 16
    initial_gradient_eval_steps: int = 100
    max_gradient_eval_steps: int = 1000
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.initial_gradient_eval_steps < 1:
            raise UsageError("hopskipjump needs steps >= 1 and initial_gradient_eval_steps >= 1")
        if self.max_gradient_eval_steps < self.initial_gradient_eval_steps:
            raise UsageError("hopskipjump max_gradient_eval_steps must be >= initial_gradient_eval_steps")
        if not _positive_finite(self.gamma):
            raise UsageError("hopskipjump gamma must be a positive number")


@register_attack(
    "hopskipjump",
    config=HopSkipJumpConfig,
    family="black-box",
    description="HopSkipJump (Chen et al. 2020) via Foolbox, decision-based minimum norm; CPU-sane 16 steps (~5k queries/sample; Foolbox's 64 steps: ~35k)",
)
class HopSkipJump(_FoolboxMinimumNorm):
    name = "hopskipjump"
    norms = ("linf", "l2")
    needs_start = True

    def make(self, norm: Norm) -> Any:
        import foolbox as fb

        cfg = self.config
        return fb.attacks.HopSkipJumpAttack(
            steps=cfg.steps,
            initial_gradient_eval_steps=cfg.initial_gradient_eval_steps,
            max_gradient_eval_steps=cfg.max_gradient_eval_steps,
            gamma=cfg.gamma,
            constraint=norm.value,
        )


@dataclass(frozen=True)
class BoundaryConfig:
    steps: int = 5000  # Foolbox's default is 25000
    spherical_step: float = 0.01
    source_step: float = 0.01
    step_adaptation: float = 1.5

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UsageError(f"boundary needs steps >= 1, got {self.steps}")
        if not (_positive_finite(self.spherical_step) and _positive_finite(self.source_step)):
            raise UsageError("boundary spherical_step and source_step must be positive numbers")
        if not (self.step_adaptation > 1 and math.isfinite(self.step_adaptation)):
            raise UsageError(f"boundary step_adaptation must be a number > 1, got {self.step_adaptation}")


@register_attack(
    "boundary",
    config=BoundaryConfig,
    family="black-box",
    description="Boundary attack (Brendel et al. 2018) via Foolbox, decision-based minimum L2; 5000 steps (Foolbox: 25000)",
)
class Boundary(_FoolboxMinimumNorm):
    name = "boundary"
    norms = ("l2",)
    needs_start = True

    def make(self, norm: Norm) -> Any:
        import foolbox as fb

        cfg = self.config
        return fb.attacks.BoundaryAttack(
            steps=cfg.steps, spherical_step=cfg.spherical_step, source_step=cfg.source_step, step_adaptation=cfg.step_adaptation
        )


@dataclass(frozen=True)
class SaltAndPepperConfig:
    steps: int = 1000
    across_channels: bool = True  # the same noise on every channel of a pixel

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UsageError(f"salt-and-pepper needs steps >= 1, got {self.steps}")


@register_attack(
    "salt-and-pepper",
    config=SaltAndPepperConfig,
    family="noise",
    description="Salt-and-pepper noise via Foolbox, raising the noise until misclassified; measured in L2 or L0",
)
class SaltAndPepper(_FoolboxMinimumNorm):
    """Foolbox keeps the point with the smallest L2 norm; under L0 the same point is measured in L0."""

    name = "salt-and-pepper"
    norms = ("l2", "l0")

    def make(self, norm: Norm) -> Any:
        import foolbox as fb

        return fb.attacks.SaltAndPepperNoiseAttack(steps=self.config.steps, across_channels=self.config.across_channels)
