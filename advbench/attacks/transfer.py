"""Transfer attacks: craft on a surrogate model, judge on the target (`transfer:pgd --surrogate M`).

A defense that only breaks gradients of its own is exposed when examples made on another,
differentiable model still fool it (Papernot et al.; the CPNI paper's Table 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advbench.attacks.base import Attack
from advbench.attacks.registry import ATTACKS, AttackSpec
from advbench.core.errors import UsageError
from advbench.core.threat import ThreatModel
from advbench.models.wrapper import RobustModel


@dataclass(frozen=True)
class TransferConfig:
    inner: str = "pgd"  # the attack spec run on the surrogate
    surrogate: str = ""  # the surrogate model's name (loaded by the engine with the target's dataset)


class Transfer(Attack):
    name = "transfer"

    def __init__(self, config: TransferConfig, inner: Attack) -> None:
        self.config, self.inner = config, inner
        self.norms = inner.norms  # type: ignore[misc]
        self.surrogate_model: RobustModel | None = None

    def adapt(self, model: RobustModel, eot_draws: int | None = None, bpda: bool | None = None) -> dict[str, object]:
        """Adaptations concern the surrogate, on which the gradients are taken."""
        if self.surrogate_model is None:
            raise UsageError("a transfer attack needs a surrogate model: pass --surrogate MODEL")
        return {**self.inner.adapt(self.surrogate_model, eot_draws, bpda), "surrogate": self.config.surrogate}

    def run(
        self, model: RobustModel, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel, indices: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.surrogate_model is None:
            raise UsageError("a transfer attack needs a surrogate model: pass --surrogate MODEL")
        result = self.inner(self.surrogate_model, x, y, threat, indices, seed)
        return result.x_adv, result.steps


# Listed with the other attacks; build_attack() parses `transfer:SPEC` itself.
ATTACKS.add(
    "transfer",
    AttackSpec("transfer", Transfer, TransferConfig, "transfer", "Run SPEC on --surrogate MODEL, judge on the target: transfer:pgd, transfer:pgd:steps=50", ("linf", "l2", "l1"), {}),
)
