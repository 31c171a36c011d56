"""Score- and decision-based black-box attacks, and random-noise baselines.

Square Attack lives here; ZOO (`zeroth_order`), the random-noise baselines (`random_noise`) and
the Foolbox-backed decision-based attacks (`decision_based`) live in their own modules.

Native attacks (Square, ZOO, noise) are batched: every iteration queries all still-robust
samples of the batch together, and a sample stops spending queries once it is misclassified.
Their randomness comes from the index-seeded samplers of `advbench.core.seeding`, so a sample's
result depends only on its dataset index and the seed, never on the rest of the batch.
`steps` counts model queries per sample.

HopSkipJump, Boundary and salt-and-pepper run through Foolbox 3 (`foolbox_adapter`); they are
reproducible per batch, not per sample (see `decision_based`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from advbench.attacks.base import Attack
from advbench.attacks.losses import margin
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core import device as device_policy
from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed, sample_uniform
from advbench.core.tensors import partition, per_sample
from advbench.core.threat import Norm, ThreatModel, batch_norm

__all__ = ["Square", "SquareConfig", "margin", "p_schedule"]


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
    for bound, div in (
        (10, 1),
        (50, 2),
        (200, 4),
        (500, 8),
        (1000, 16),
        (2000, 32),
        (4000, 64),
        (6000, 128),
        (8000, 256),
    ):
        if it <= bound:
            return p_init / div
    return p_init / 512


def _rectangles(rows: int, cols: int) -> torch.Tensor:
    """The authors' L2 'eta_rectangles' pattern: nested rectangles weighted 1/(k+1)^2, unit L2 norm."""
    delta = torch.zeros(rows, cols, dtype=torch.float64)
    r, c = rows // 2, cols // 2
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
        delta[max(r, 0) : min(r + 2 * k + 1, rows), max(c, 0) : min(c + 2 * k + 1, cols)] += (
            1.0 / (k + 1) ** 2
        )
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


@lru_cache(maxsize=64)
def _eta_on(s: int, device: torch.device) -> torch.Tensor:
    """`_eta(s)` on `device`, copied there once per size rather than on every query (a host to
    GPU copy each step otherwise)."""
    return _eta(s).to(device)


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
    return (
        torch.arange(n, device=dev).view(n, 1, 1, 1),
        torch.arange(c, device=dev).view(1, c, 1, 1),
        rows,
        cols,
    )


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

    A known weakness on a model random at inference: each query is one forward pass, so a row
    stops at the first pass that misclassifies it, lucky or not (its final point is then judged
    by a vote), and a proposal is kept on one noisy margin. Square searches less there than on a
    deterministic model; `auto` skips it on random models, as AutoAttack's `rand` version does,
    and only the checks' black-box probe runs it (where it found breaks `auto` missed on
    sc-frontend: docs/notes/zoo.md).
    """

    name = "square"

    def __init__(self, config: SquareConfig = SquareConfig()) -> None:
        self.config = config

    def run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
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
                x_adv, hit, used = self._single_run(
                    model, x[todo], y[todo], threat, indices[todo], key
                )
            # Samples no restart breaks keep the last restart's best point.
            x_best[todo] = x_adv
            broken[todo] = hit
            steps[todo] += used
        return x_best, steps

    def _init(
        self, x: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, key: int
    ) -> torch.Tensor:
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
        eta = _eta_on(s0, x.device)
        flip = (u[..., c] > 0.5).view(n, 1, nbh, nbw, 1, 1)
        blocks = torch.where(flip, eta.t(), eta) * _signs(u[..., :c]).permute(0, 3, 1, 2).reshape(
            n, c, nbh, nbw, 1, 1
        )
        grid = blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, c, nbh * s0, nbw * s0)
        delta = torch.zeros_like(x)
        rows, cols = min(h - top, nbh * s0), min(w - left, nbw * s0)
        delta[:, :, top : top + rows, left : left + cols] = grid[:, :, :rows, :cols]
        delta = delta / per_sample(batch_norm(delta, Norm.L2) + 1e-12, x)
        return (x + delta * eps).clamp(0.0, 1.0)

    def _propose(
        self, x: torch.Tensor, x_best: torch.Tensor, threat: ThreatModel, u: torch.Tensor, p: float
    ) -> torch.Tensor:
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
        norm_image = per_sample(batch_norm(delta, Norm.L2), x)
        both = _window(top1, left1, s, h, w) | _window(top2, left2, s, h, w)
        norm_windows = (delta * both).pow(2).sum(dim=(-2, -1), keepdim=True).sqrt()
        eta = _eta_on(s, x.device)
        flip = (u[:, 4] > 0.5).view(n, 1, 1, 1)
        new = torch.where(flip, eta.t(), eta) * _signs(u[:, 5 : 5 + c]).view(n, c, 1, 1) + old / (
            1e-12 + norm_old
        )
        budget = ((eps**2 - norm_image**2).clamp_min(0.0) / c + norm_windows**2).sqrt()
        new = new / (1e-12 + new.pow(2).sum(dim=(-2, -1), keepdim=True).sqrt()) * budget
        delta = torch.where(_window(top2, left2, s, h, w), torch.zeros_like(delta), delta)
        delta[at1] = new
        delta = delta / per_sample(batch_norm(delta, Norm.L2) + 1e-12, x) * eps
        return (x + delta).clamp(0.0, 1.0)

    def _single_run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        key: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.config
        n, c = len(x), x.shape[1]
        x_best = self._init(x, threat, indices, key)
        logits = model(x_best)
        best = margin(logits, y)
        hit = logits.argmax(1) != y
        used = torch.ones(n, dtype=torch.int64, device=x.device)
        active = (~hit).nonzero().view(-1)
        running = torch.ones(len(active), dtype=torch.bool, device=x.device)  # over `active`
        every = device_policy.steps_between_syncs(x.device)
        for it in range(1, cfg.n_queries):
            if len(active) == 0:
                break
            p = p_schedule(cfg.p_init, it - 1, cfg.n_queries)
            u = sample_uniform(key, indices[active], (5 + c,), stream=it, device=x.device)
            x_new = self._propose(x[active], x_best[active], threat, u, p)
            logits = model(x_new)
            m = margin(logits, y[active])
            # Rows fooled since the last compaction ride along, masked: no update, no query counted.
            fooled = (logits.argmax(1) != y[active]) & running
            better = ((m < best[active]) | fooled) & running
            x_best[active] = torch.where(per_sample(better, x_new), x_new, x_best[active])
            best[active] = torch.where(better, m, best[active])
            used[active] += running
            hit[active] |= fooled
            running = running & ~fooled
            if it % every == 0:
                rows, keep = partition(~running)  # the host sync, once per `every` queries
                if len(rows):
                    active, running = active[keep], running[keep]
        return x_best, hit, used
