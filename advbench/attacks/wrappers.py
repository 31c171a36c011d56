"""Model-side wrappers: what an attack sees of a model, chosen by the evaluation, not by the attack.

Attacks hold only their configuration. How gradients are taken against a particular model is
a property of the model as attacked (Foolbox's `ExpectationOverTransformationWrapper`, Foolbox
2's `CompositeModel`):

- `AttackedModel`: gradients through the model's BPDA surrogates (when on) and averaged over
  `eot_draws` forward passes of a model random at inference (EOT); judged by the exact model:
  one pass of a deterministic model, a sequential vote of fresh draws of a random one
  (`models.vote`).
- `TransferModel`: gradients and intermediate predictions from a surrogate model, the verdict
  from the target (transfer attacks).

`view_for` picks the adaptive default for an attack on a model; `adaptations()` is the record
of that choice that the run stores (it is part of the run's identity).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from advbench.core.errors import UsageError
from advbench.models.vote import DEFAULT_VOTE, Judgement, VoteRule, judge
from advbench.models.wrapper import RobustModel

EOT_DRAWS_RANDOM_MODEL = (
    20  # EOT draws per gradient on a model random at inference (Athalye et al.)
)
# The most fresh draws a vote confirming an early stop takes: the vote rule's looks up to this
# cap (16: its first look). Undecided at the cap, the sample keeps running; its final point is
# judged by the full vote, so the cap costs attack time, never a verdict. Without it, 105 of 148
# confirming votes of `auto` on pni-w ran to 128 draws undecided, at points the attack hovers
# around with P(correct) near 1/2. On pni-w's first 200 test images (Linf 0.1) the cap made
# `auto` 1.3x faster and broke 4 more images, none fewer (docs/notes/performance.md).
CONFIRM_DRAWS = 16


class AttackedModel(nn.Module):
    """A `RobustModel` as attacks see it: forward in BPDA attack mode, `eot_draws` passes per gradient."""

    def __init__(
        self,
        model: RobustModel,
        eot_draws: int = 1,
        bpda: bool = True,
        random: bool = False,
        log_outputs: bool = False,
        vote: VoteRule = DEFAULT_VOTE,
        confirm_draws: int | None = CONFIRM_DRAWS,
    ) -> None:
        super().__init__()
        if eot_draws < 1:
            raise UsageError(f"EOT needs at least 1 draw per gradient, got {eot_draws}")
        self.model = model
        self.eot_draws = int(eot_draws)
        self.bpda = bool(bpda)
        # Set by adaptive evaluation when checks find it: an undeclared random model is treated as
        # random (its points judged by votes); probabilities are attacked as log-probabilities.
        self.random = bool(random)
        self.log_outputs = bool(log_outputs)
        self.vote = vote  # how a point of a random model is judged
        # The cap on a vote confirming an early stop (None: the vote's own cap, as runs stored
        # before it existed).
        self.confirm = vote if confirm_draws is None else vote.truncated(confirm_draws)
        self.confirm_draws = confirm_draws

    # The traits attacks read, from the wrapped model.
    @property
    def name(self) -> str:
        return self.model.name

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.model.input_shape

    @property
    def stochastic(self) -> bool:
        return self.model.stochastic or self.random

    @property
    def has_bpda(self) -> bool:
        return self.model.has_bpda

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def target(self) -> RobustModel:
        """The model whose predictions decide success."""
        return self.model

    def check_inputs(self, x: torch.Tensor) -> None:
        self.target.check_inputs(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.model.attack_mode(self.bpda):
            out = self.model(x)
        # log is monotone: the argmax, hence every prediction, is unchanged.
        return out.clamp_min(1e-30).log() if self.log_outputs else out

    def forward_keyed(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """`forward` of rows whose row keys the caller has (EOT copies of one batch in one pass)."""
        with self.model.attack_mode(self.bpda):
            out = self.model.forward_keyed(x, keys)
        return out.clamp_min(1e-30).log() if self.log_outputs else out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """What the attack sees as the prediction (for its own early stopping and bookkeeping)."""
        return self(x).argmax(dim=1)

    @property
    def vote_rule(self) -> VoteRule | None:
        """The vote that judges points (None: one pass of a deterministic model)."""
        return self.vote if self.stochastic else None

    def judge(self, x: torch.Tensor, y: torch.Tensor) -> Judgement:
        """The exact target model's judgement of (x, y): the only judge of success."""
        return judge(self.target, x, y, self.vote_rule)

    def confirmed_wrong(
        self, x: torch.Tensor, y: torch.Tensor, wrong_draws: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Where an attack may stop a sample at x, given how many of the step's `eot_draws` passes
        misclassified it: (stop, forward passes spent confirming). A deterministic model's pass is
        proof. On a random model one lucky pass proves nothing: the step's draws nominate the
        points most of them misclassified, and an independent vote of at most `confirm_draws`
        fresh draws must decide them wrong."""
        spent = torch.zeros(len(x), dtype=torch.int64, device=x.device)
        nominated = 2 * wrong_draws > self.eot_draws
        if self.vote_rule is None:
            return nominated, spent
        stop = torch.zeros_like(nominated)
        rows = nominated.nonzero().view(-1)
        if len(rows):
            verdict = judge(self.target, x[rows], y[rows], self.confirm)
            stop[rows] = verdict.wrong
            assert verdict.draws is not None
            spent[rows] = verdict.draws
        return stop, spent

    def adaptations(self) -> dict[str, Any]:
        chosen = {
            "eot_draws": self.eot_draws,
            "bpda": self.bpda and self.has_bpda,
            "stochastic_model": self.stochastic,
        }
        # Keys appear only when set, so runs stored before they existed keep their identity.
        return {
            **chosen,
            **({"treated_as_random": True} if self.random else {}),
            **({"log_outputs": True} if self.log_outputs else {}),
            **({"vote": self.vote.label()} if self.vote_rule is not None else {}),
            **(
                {"confirm_draws": self.confirm.cap}
                if self.vote_rule is not None and self.confirm.cap < self.vote.cap
                else {}
            ),
        }


class TransferModel(AttackedModel):
    """Gradients and predictions from `surrogate`, success judged on `target` (transfer attacks)."""

    def __init__(self, target: RobustModel, surrogate: AttackedModel, surrogate_name: str) -> None:
        super().__init__(
            surrogate.model,
            surrogate.eot_draws,
            surrogate.bpda,
            vote=surrogate.vote,
            confirm_draws=surrogate.confirm_draws,
        )
        self.judged_by = target
        self.surrogate_name = surrogate_name

    @property
    def target(self) -> RobustModel:
        return self.judged_by

    @property
    def vote_rule(self) -> VoteRule | None:
        return self.vote if self.judged_by.stochastic or self.random else None

    def adaptations(self) -> dict[str, Any]:
        return {**super().adaptations(), "surrogate": self.surrogate_name}


def view_for(
    model: RobustModel | AttackedModel,
    uses_gradients: bool,
    eot_draws: int | None = None,
    bpda: bool = True,
) -> AttackedModel:
    """The adaptive default: EOT with 20 draws per gradient for gradient attacks on a model random
    at inference (1 otherwise, or `eot_draws` when given); BPDA whenever the model has surrogates.
    An `AttackedModel` is returned as it is: whoever built it chose."""
    if isinstance(model, AttackedModel):
        return model
    if eot_draws is not None and eot_draws < 1:
        raise UsageError(f"EOT needs at least 1 draw per gradient, got {eot_draws}")
    draws = (
        eot_draws
        if eot_draws is not None
        else (EOT_DRAWS_RANDOM_MODEL if model.stochastic and uses_gradients else 1)
    )
    return AttackedModel(model, draws, bpda)
