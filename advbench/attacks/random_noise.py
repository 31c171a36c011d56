"""Random-noise baselines: uniform or Gaussian draws in the eps-ball, the first fooling draw kept.

Batched and index-seeded like the other native black-box attacks (see `blackbox`); `steps`
counts model queries per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advbench.attacks.base import Attack
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed, sample_normal, sample_uniform
from advbench.core.tensors import per_sample
from advbench.core.threat import Norm, ThreatModel, batch_norm


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

    def l2_direction(
        self,
        seed: int,
        indices: torch.Tensor,
        shape: tuple[int, ...],
        draw: int,
        device: torch.device,
    ) -> torch.Tensor:
        raise NotImplementedError

    def run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
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
                    delta = (
                        2
                        * sample_uniform(key, indices[active], shape, stream=draw, device=x.device)
                        - 1
                    ) * threat.eps
                else:
                    direction = self.l2_direction(key, indices[active], shape, draw, x.device)
                    delta = (
                        direction
                        / per_sample(batch_norm(direction, Norm.L2).clamp_min(1e-12), direction)
                        * threat.eps
                    )
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

    def l2_direction(
        self,
        seed: int,
        indices: torch.Tensor,
        shape: tuple[int, ...],
        draw: int,
        device: torch.device,
    ) -> torch.Tensor:
        return sample_normal(seed, indices, shape, stream=draw, device=device)


@register_attack(
    "uniform-noise",
    config=NoiseConfig,
    family="noise",
    description="Random-noise baseline: Linf uniform in the ball, L2 uniform-cube direction on the eps-sphere (as Foolbox)",
)
class UniformNoise(_Noise):
    name = "uniform-noise"

    def l2_direction(
        self,
        seed: int,
        indices: torch.Tensor,
        shape: tuple[int, ...],
        draw: int,
        device: torch.device,
    ) -> torch.Tensor:
        return 2 * sample_uniform(seed, indices, shape, stream=draw, device=device) - 1
