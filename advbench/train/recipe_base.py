"""What every training recipe shares: the step context, the recipe base class and its registry,
and the losses several recipes use (KL, TRADES)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advbench.core.errors import UsageError
from advbench.core.registry import Registry
from advbench.core.seeding import derive_seed
from advbench.core.threat import Norm, ThreatModel
from advbench.models.wrapper import RobustModel
from advbench.train.adversary import maximize
from advbench.train.config import TrainConfig

Loss = tuple[Tensor, Tensor]  # (loss, logits whose accuracy the progress log reports)
Net = TypeVar("Net", bound=nn.Module)


@dataclass
class StepContext:
    """What a recipe sees of the training state at one step."""

    model: RobustModel  # unfrozen wrapper around `net`: normalizes [0,1] inputs
    config: TrainConfig
    epoch: int
    progress: float  # fraction of the current epoch done, in [0, 1)
    after_step: list[Callable[[], None]] = field(default_factory=list)

    @property
    def net(self) -> nn.Module:
        return self.model.net

    def threat(self) -> ThreatModel:
        return ThreatModel(Norm(self.config.at_norm), self.config.at_eps)

    def seed(self, what: str) -> int:
        return derive_seed(self.config.seed, what, self.epoch)

    def pgd(
        self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, stop_after: int | None = None
    ) -> torch.Tensor:
        """Madry et al.'s inner maximization of CE (uniform start); `stop_after`: FAT's early stop."""
        cfg = self.config
        return maximize(
            self.model,
            x,
            lambda logits, rows: F.cross_entropy(logits, y[rows], reduction="none"),
            self.threat(),
            cfg.at_steps,
            cfg.at_rel_stepsize * cfg.at_eps,
            idx,
            self.seed("adversary"),
            y=y,
            stop_after=stop_after,
        )

    def trades_adversary(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """TRADES' inner maximization: KL from the clean softmax, from x + 0.001 N(0, I)."""
        cfg = self.config
        with torch.no_grad():
            self.net.eval()
            clean = F.softmax(self.model(x), 1)
            self.net.train()
        return maximize(
            self.model,
            x,
            lambda logits, rows: kl(clean[rows], logits),
            self.threat(),
            cfg.at_steps,
            cfg.at_rel_stepsize * cfg.at_eps,
            idx,
            self.seed("trades"),
            start="normal",
        )


def trained(net: nn.Module, kind: type[Net], recipe: str) -> Net:
    """`net` as the architecture a recipe is written for; a UsageError naming both otherwise."""
    if not isinstance(net, kind):
        raise UsageError(
            f"the {recipe} recipe trains {kind.__name__} models, not {type(net).__name__}"
        )
    return net


def kl(target_probs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(target || softmax(logits))."""
    return F.kl_div(F.log_softmax(logits, 1), target_probs, reduction="none").sum(1)


class Recipe:
    name = "recipe"
    adversarial = (
        False  # adversarial recipes keep the epoch with the best robust validation accuracy
    )

    def prepare(self, net: nn.Module, x_train: torch.Tensor, config: TrainConfig) -> None:
        """Once, before training (skipped when resuming: the state already holds its result)."""

    def start_epoch(self, net: nn.Module, epoch: int, config: TrainConfig) -> None:
        """At the start of every epoch, also after resuming."""

    def loss(
        self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits whose accuracy the progress log reports)."""
        raise NotImplementedError


RECIPES: Registry[Recipe] = Registry("training recipe")


def register_recipe(name: str) -> Callable[[type[Recipe]], type[Recipe]]:
    def wrap(cls: type[Recipe]) -> type[Recipe]:
        cls.name = name
        RECIPES.add(name, cls())
        return cls

    return wrap


def trades_loss(
    ctx: StepContext, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = ctx.model(x)
    robust = kl(F.softmax(logits, 1), ctx.model(x_adv)).mean()
    return F.cross_entropy(logits, y) + ctx.config.trades_beta * robust, logits
