"""The attack contract: the base class validates, projects, and recomputes success itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from advbench.core.errors import UsageError
from advbench.core.threat import ThreatModel
from advbench.models.wrapper import RobustModel


@dataclass
class AttackResult:
    """One result type for every attack: per-sample adversarial inputs and outcomes."""

    x_adv: torch.Tensor
    success: torch.Tensor  # bool: the exact model misclassifies x_adv
    distance: torch.Tensor  # perturbation norm in the threat model's norm
    steps: torch.Tensor  # int: gradient steps (or queries) spent per sample
    adv_pred: torch.Tensor  # int: the exact model's prediction on x_adv


class Attack:
    """Base of fixed-epsilon attacks. Subclasses implement `run`; `__call__` is the contract."""

    name: ClassVar[str] = "attack"
    norms: ClassVar[tuple[str, ...]] = ("linf", "l2")

    def run(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (x_adv, steps per sample)."""
        raise NotImplementedError

    def __call__(
        self,
        model: RobustModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor | None = None,
        seed: int = 0,
    ) -> AttackResult:
        if threat.norm.value not in self.norms:
            raise UsageError(f"attack {self.name!r} does not support the {threat.norm.value} norm (supports {', '.join(self.norms)})")
        model.check_inputs(x)
        if y.shape != (len(x),):
            raise UsageError(f"labels must have shape ({len(x)},), got {tuple(y.shape)}")
        if indices is None:
            indices = torch.arange(len(x), device=x.device)
        with model.attack_mode():
            x_adv, steps = self.run(model, x, y, threat, indices, seed)
        x_adv = threat.project(x, x_adv.detach())
        adv_pred = model.predict(x_adv)
        success = adv_pred != y
        return AttackResult(x_adv, success, threat.distance(x, x_adv), steps, adv_pred)
