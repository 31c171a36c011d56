"""Transfer attacks: craft on a surrogate model, judge on the target (`transfer:pgd --surrogate M`).

A defense that only breaks gradients of its own is exposed when examples made on another,
differentiable model still fool it (Papernot et al.; the CPNI paper's Table 4). The surrogate
is a property of the model as attacked (`advbench.attacks.wrappers.TransferModel`, built by the
evaluation plan); the attack holds only which inner attack runs and the surrogate's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from advbench.attacks.base import Attack
from advbench.attacks.registry import register_attack
from advbench.attacks.wrappers import AttackedModel, TransferModel
from advbench.core.errors import UsageError
from advbench.core.threat import ThreatModel
from advbench.models.wrapper import RobustModel


@dataclass(frozen=True)
class TransferConfig:
    inner: str = "pgd"  # the attack spec run on the surrogate
    surrogate: str = ""  # the surrogate model's name (loaded by the plan with the target's dataset)


@register_attack(
    "transfer",
    config=TransferConfig,
    family="transfer",
    wraps=True,
    norms=("linf", "l2", "l1"),
    description="Run SPEC on --surrogate MODEL, judge on the target: transfer:pgd, transfer:pgd:steps=50",
)
class Transfer(Attack):
    name = "transfer"

    def __init__(self, config: TransferConfig, inner: Attack) -> None:
        self.config, self.inner = config, inner
        self.norms = inner.norms  # type: ignore[misc]
        self.uses_gradients = inner.uses_gradients  # type: ignore[misc]

    @classmethod
    def from_inner(
        cls, inner_label: str, inner: Attack, inner_config: dict[str, Any], surrogate: str | None
    ) -> tuple[str, Attack, dict[str, Any]]:
        if not surrogate:
            raise UsageError(
                f"transfer:{inner_label} needs a surrogate model: pass --surrogate MODEL"
            )
        config = {"inner": inner_label, "inner_config": inner_config, "surrogate": surrogate}
        return f"transfer:{inner_label}", cls(TransferConfig(inner_label, surrogate), inner), config

    def view(
        self, model: RobustModel | AttackedModel, eot_draws: int | None = None, bpda: bool = True
    ) -> AttackedModel:
        if not isinstance(model, TransferModel):
            raise UsageError(
                "a transfer attack runs on a TransferModel(target, surrogate view); pass --surrogate MODEL"
            )
        return model

    def run(
        self,
        model: AttackedModel,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        indices: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner.run(model, x, y, threat, indices, seed)
