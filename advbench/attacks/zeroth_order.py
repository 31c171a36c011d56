"""ZOO-ADAM (Chen et al. 2017): a score-based black-box attack by coordinate finite differences.

Batched and index-seeded like the other native black-box attacks (see `blackbox`); `steps`
counts model queries per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advbench.attacks.base import Attack
from advbench.attacks.losses import margin
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import UsageError, is_positive_finite
from advbench.core.seeding import derive_seed, sample_uniform
from advbench.core.threat import ThreatModel

# Rows per forward pass where one step evaluates many points per sample (ZOO).
MAX_ROWS = 4096


@dataclass(frozen=True)
class ZOOConfig:
    steps: int = 200
    coordinates: int = 128  # coordinates estimated per step (2 queries each)
    h: float = 1e-4  # finite-difference step
    lr: float = 0.01  # ADAM learning rate

    def __post_init__(self) -> None:
        if self.steps < 1 or self.coordinates < 1:
            raise UsageError("zoo needs steps >= 1 and coordinates >= 1")
        if not (is_positive_finite(self.h) and is_positive_finite(self.lr)):
            raise UsageError("zoo h and lr must be positive numbers")


def _probe(
    model: AttackedModel,
    flat: torch.Tensor,
    coords: torch.Tensor,
    plus: torch.Tensor,
    minus: torch.Tensor,
    y: torch.Tensor,
    shape: tuple[int, ...],
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
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
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
                    coords = (
                        sample_uniform(key, indices[active], (d,), stream=it, device=x.device)
                        .topk(k, dim=1)
                        .indices
                    )
                else:
                    coords = torch.arange(d, device=x.device).expand(na, d)
                cur = flat.gather(1, coords)
                plus, minus = (cur + cfg.h).clamp(0.0, 1.0), (cur - cfg.h).clamp(0.0, 1.0)
                margins, preds = _probe(
                    model, flat, coords, plus, minus, y[active], tuple(x.shape[1:])
                )
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
                updated = flat[keep].scatter(
                    1, coords, cur - cfg.lr * m_hat / (v_hat.sqrt() + 1e-8)
                )
                x_adv[active] = threat.project(x[active], updated.view(-1, *x.shape[1:]))
        return x_adv, steps
