"""Judging a point: one forward pass of a deterministic model, a vote of fresh draws of a random one.

A model random at inference has, at each input, a probability P(correct) that one forward pass
classifies it correctly. One pass is a coin flip with that bias: taking the worst case over
several attacks, each judged by one pass, measures how many flips were made, not how robust the
model is (five attacks at P(correct) = 0.8 say "robust" with probability 0.8^5 = 0.33).

So a point of a random model is judged by a vote with a sequential test (`VoteRule`): draw
fresh forward passes in rounds, and after each round (a "look", at 16, 32, 64 and 128 draws by
default) test P(correct) = 1/2 with the exact binomial test, one-sided each way, at level
alpha / (number of looks) (Bonferroni over the looks, so a decision is wrong with probability at
most alpha whatever P(correct) is). The point is decided correct or wrong at the first look
that rejects, and left undecided at the cap: an undecided point counts as robust, and is
reported as such. The counts give P(correct) = correct draws / draws.

Fresh draws come from the wrapper's per-input randomness (`models.randomness`): forwarding an
input again draws new noise, so a vote's draws are independent of the attack's and of each other.
All of it is batched: one forward pass per chunk of (rows x copies), one host sync per look.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.stats import binom
from torch import nn

from advbench.core.seeding import row_keys
from advbench.models.wrapper import RobustModel

CORRECT, UNDECIDED, WRONG = 1, 0, -1
VOTE_ROWS = 4096  # inputs per forward pass of a vote (copies x rows), to bound memory


@dataclass(frozen=True)
class VoteRule:
    """The sequential test that judges a point of a random model (module docstring)."""

    alpha: float = 0.01  # error rate of a decision, whatever P(correct) is
    looks: tuple[int, ...] = (16, 32, 64, 128)  # cumulative draws at which the test looks

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"a vote's error rate is in (0, 1), got {self.alpha}")
        if not self.looks or any(b <= a for a, b in zip(self.looks, self.looks[1:])):
            raise ValueError(f"a vote's looks are increasing draw counts, got {self.looks}")
        if self.looks[0] < 1:
            raise ValueError("a vote draws at least once")

    @property
    def cap(self) -> int:
        return self.looks[-1]

    @functools.cached_property
    def needed(self) -> tuple[int, ...]:
        """Per look, the draws one way (correct, or wrong) that decide the point that way: the
        least k with P(Binomial(n, 1/2) >= k) <= alpha / looks (n + 1: never at that look)."""
        level = self.alpha / len(self.looks)
        return tuple(int(binom.isf(level, n, 0.5)) + 1 for n in self.looks)

    def truncated(self, cap: int) -> VoteRule:
        """The same test with only the looks up to `cap` draws: a shorter vote at the same error
        rate, for questions where "undecided" costs nothing (confirming an early stop)."""
        looks = tuple(n for n in self.looks if n <= cap)
        if not looks:
            raise ValueError(
                f"a vote's first look is at {self.looks[0]} draws, above the cap {cap}"
            )
        return VoteRule(self.alpha, looks)

    def label(self) -> str:
        """The rule as it enters a run's identity."""
        return f"vote(alpha={self.alpha:g},looks={'/'.join(map(str, self.looks))})"

    def to_config(self) -> dict[str, object]:
        """What a run stores of its vote (reports read the cap and the draws deciding at it)."""
        return {
            "label": self.label(),
            "alpha": self.alpha,
            "looks": list(self.looks),
            "needed": list(self.needed),
            "cap": self.cap,
            "needed_at_cap": self.needed[-1],
            "test": self.describe(),
        }

    def describe(self) -> str:
        """The rule in words, for reports."""
        return (
            f"majority vote of fresh draws, exact binomial test of P(correct) = 1/2 at "
            f"{'/'.join(map(str, self.looks))} draws, error rate {self.alpha:g} per decision "
            f"(Bonferroni over looks); undecided at {self.cap} draws counts as robust"
        )


DEFAULT_VOTE = VoteRule()


@dataclass(frozen=True)
class Judgement:
    """How a model classifies points: the prediction and whether it is wrong, per point; for a vote
    also the correct draws and the draws (None for one deterministic pass)."""

    prediction: (
        torch.Tensor
    )  # int: the label unless the point is judged wrong (votes), else the class
    wrong: torch.Tensor  # bool: misclassified (a vote: decided wrong)
    correct_draws: torch.Tensor | None = None  # int per point
    draws: torch.Tensor | None = None  # int per point

    @property
    def voted(self) -> bool:
        return self.draws is not None

    @property
    def p_correct(self) -> torch.Tensor:
        """Estimated P(correct) per point (0 or 1 for one deterministic pass)."""
        if self.correct_draws is None or self.draws is None:
            return (~self.wrong).float()
        return self.correct_draws.float() / self.draws.clamp_min(1).float()

    def take(self, rows: torch.Tensor) -> Judgement:
        return Judgement(
            self.prediction[rows],
            self.wrong[rows],
            None if self.correct_draws is None else self.correct_draws[rows],
            None if self.draws is None else self.draws[rows],
        )


@torch.no_grad()
def one_pass(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Judgement:
    """A deterministic model's judgement: its prediction."""
    prediction = model(x).argmax(1)
    return Judgement(prediction, prediction != y)


@torch.no_grad()
def vote(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, rule: VoteRule = DEFAULT_VOTE
) -> Judgement:
    """Judge each point of a random `model` by a sequential vote of fresh draws (`VoteRule`).

    `prediction` is the label where the vote says correct or is undecided, else the wrong class
    drawn most often."""
    n = len(x)
    device = x.device
    correct = torch.zeros(n, dtype=torch.int64, device=device)
    draws = torch.zeros(n, dtype=torch.int64, device=device)
    decision = torch.zeros(n, dtype=torch.int8, device=device)
    counts: torch.Tensor | None = None
    active = torch.arange(n, device=device)
    done = 0
    for look, needed in zip(rule.looks, rule.needed):
        if len(active) == 0:
            break
        drawn = _draw_counts(model, x[active], look - done)
        counts = (
            torch.zeros(n, drawn.shape[1], dtype=torch.int64, device=device)
            if counts is None
            else counts
        )
        counts[active] += drawn
        hits = counts[active].gather(1, y[active].view(-1, 1)).squeeze(1)
        correct[active], draws[active] = hits, look
        step = torch.where(
            hits >= needed,
            CORRECT,
            torch.where(look - hits >= needed, WRONG, UNDECIDED),
        ).to(torch.int8)
        decision[active] = step
        active = active[step == UNDECIDED]
        done = look
    wrong = decision == WRONG
    if counts is None:  # no points
        return Judgement(y.clone(), wrong, correct, draws)
    others = counts.masked_fill(F.one_hot(y, counts.shape[1]).bool(), -1).argmax(1)
    return Judgement(torch.where(wrong, others, y), wrong, correct, draws)


def _draw_counts(model: nn.Module, x: torch.Tensor, copies: int) -> torch.Tensor:
    """(rows, classes): how often each class won in `copies` fresh forward passes of each row."""
    per_pass = max(1, VOTE_ROWS // max(1, len(x)))
    keys = row_keys(x) if isinstance(model, RobustModel) else None
    total: torch.Tensor | None = None
    left = copies
    while left:
        k = min(left, per_pass)
        logits = (
            model.forward_copies(x, k, keys)
            if isinstance(model, RobustModel)
            else model(x.repeat(k, *([1] * (x.dim() - 1))))
        )
        won = F.one_hot(logits.argmax(1), logits.shape[1]).view(k, len(x), -1).sum(0)
        total = won if total is None else total + won
        left -= k
    assert total is not None
    return total


def judge(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rule: VoteRule | None) -> Judgement:
    """One pass (`rule` None: a deterministic model) or a vote."""
    return one_pass(model, x, y) if rule is None else vote(model, x, y, rule)
