"""Decision-based minimum-norm attacks run through Foolbox 3: HopSkipJump, Boundary, salt-and-pepper.

They go through `foolbox_adapter` and are reproducible per batch, not per sample (Foolbox draws
from torch's global generator, seeded from the run seed inside the call).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from advbench.attacks.base import MinimumNormAttack
from advbench.attacks.foolbox_adapter import foolbox_minimize
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.errors import UsageError, is_positive_finite
from advbench.core.threat import Norm


class _FoolboxMinimumNorm(MinimumNormAttack):
    """Runs a Foolbox minimization attack; reproducible per batch (same batch, seed, device), not per sample."""

    needs_start: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        self.config = config

    def make(self, norm: Norm) -> Any:
        raise NotImplementedError

    def run_unbounded(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        norm: Norm,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return foolbox_minimize(
            lambda: self.make(norm), model, x, y, seed, self.name, needs_start=self.needs_start
        )


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
            raise UsageError(
                "hopskipjump max_gradient_eval_steps must be >= initial_gradient_eval_steps"
            )
        if not is_positive_finite(self.gamma):
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
            constraint="linf" if norm is Norm.LINF else "l2",  # (the norms it supports)
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
        if not (is_positive_finite(self.spherical_step) and is_positive_finite(self.source_step)):
            raise UsageError("boundary spherical_step and source_step must be positive numbers")
        if not (self.step_adaptation > 1 and math.isfinite(self.step_adaptation)):
            raise UsageError(
                f"boundary step_adaptation must be a number > 1, got {self.step_adaptation}"
            )


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
            steps=cfg.steps,
            spherical_step=cfg.spherical_step,
            source_step=cfg.source_step,
            step_adaptation=cfg.step_adaptation,
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

        return fb.attacks.SaltAndPepperNoiseAttack(
            steps=self.config.steps, across_channels=self.config.across_channels
        )
