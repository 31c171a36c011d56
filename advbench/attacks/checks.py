"""Gradient-masking checks as a registry of small objects (AutoAttack's flags; Carlini et al. 2019, §5).

Each `Check` has a name constant, what it measures, its limit, and its remedy: the change to
the evaluation a failure calls for. Two phases:

- `PROBE`: cheap measurements on the model before any stage runs (outputs, determinism, input
  gradients, accuracy at a huge budget on a few samples): `model_checks`.
- `STAGES`: read from the evaluation's own stage results on the checked samples, as AutoAttack
  reads Square breaking what APGD left (`stage_checks`): a probe attack runs only where the
  evaluation has no stage of the kind compared, and only on what the evaluation left robust.

`choose()` is data: the union of the failed checks' remedies. A check cannot be registered
without a remedy, and remedies live in their checks, so neither can outlive the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import beta, binom

from advbench.core.registry import Registry

PROBE, STAGES = "probe", "stages"
# The `STAGES` checks count verified breaks on the checked samples: one fails when the share is
# above its limit and at least this many samples make it, never on a single image. Each break is
# an adversarial example the exact model misclassifies, not a noisy figure; a one-sided test
# (Clopper-Pearson at 0.05) would have let hah-vgg16 pass with Square breaking 7 of 72 samples
# after APGD, where Square-5000 then broke 4.1 % of 1000 (docs/runs/checks-parity.json).
MIN_BREAKS = 2
INTERVAL_LEVEL = 0.95  # of the Clopper-Pearson interval each message reports
# Random models: a `STAGES` check fires only when an exact one-sided binomial test says the
# share of vote-confirmed breaks is above its limit at this level (`Check.tested(voted=True)`).
VOTED_TEST_LEVEL = 0.05

# A margin of 3 samples in 100: smaller gaps are within the run-to-run noise of random starts.
MARGIN = 0.03
BLACK_BOX_MARGIN = 0.05
LARGE_EPS_CEILING = 0.05
DEAD_GRADIENT_LIMIT = 0.05  # share of samples whose input gradient is zero or not finite
PROBABILITY_ROWS_LIMIT = 0.5  # share of output rows that are probabilities

PROBABILITIES = "logits-not-probabilities"
DETERMINISTIC = "deterministic"
INPUT_GRADIENTS = "input-gradients"
LARGE_EPS = "large-eps"
BLACK_BOX_VS_WHITE_BOX = "black-box-vs-white-box"
SCALE_INVARIANT_LOSS = "scale-invariant-loss"
SINGLE_STEP_VS_ITERATIVE = "single-step-vs-iterative"
MORE_STEPS = "more-steps"

BLACK_BOX_BUDGET = "square:n_queries=5000"
SCALE_FREE = ("pgd:loss=dlr", "pgd:loss=cw")
LONGER = "pgd:steps=100,restarts=3,rel_stepsize=0.05"


@dataclass(frozen=True)
class Remedy:
    """What the evaluation changes when a check fails; the attacks run on every still-robust sample."""

    change: str
    attacks: tuple[str, ...] = ()
    transfer: bool = False  # also transfer attacks from the dataset's smooth surrogate model
    random: bool = (
        False  # evaluate as a model random at inference (EOT gradients, points judged by votes)
    )
    log_outputs: bool = False  # attack the logarithm of the outputs


@dataclass(frozen=True)
class Check:
    """A gradient-masking check: what it measures, the limit a failure passes, and the remedy the
    evaluation applies; `phase` is `probe` (before any stage) or `stages` (read from them)."""

    name: str
    phase: str  # PROBE or STAGES
    measures: str
    limit: float
    remedy: Remedy

    def __post_init__(self) -> None:
        if self.phase not in (PROBE, STAGES):
            raise ValueError(f"check {self.name}: phase is {PROBE} or {STAGES}, not {self.phase!r}")
        if not self.remedy.change or not (
            self.remedy.attacks or self.remedy.random or self.remedy.log_outputs
        ):
            raise ValueError(f"check {self.name} has no remedy")

    def result(self, value: float, why: str, limit: float | None = None) -> "CheckResult":
        """Passed when `value` <= the limit (the check's own, or `limit` where it depends on the run)."""
        bound = self.limit if limit is None else limit
        return CheckResult(
            self.name, bool(value <= bound), float(value), float(bound), why, phase=self.phase
        )

    def tested(
        self, count: int, n: int, why: str, limit: float | None = None, voted: bool = False
    ) -> "CheckResult":
        """`count` of `n` checked samples broken: fails when the share is above the limit and
        `count` >= `MIN_BREAKS`; `why` carries the share's Clopper-Pearson interval.

        `voted` (a random model, whose breaks are vote decisions with their own error rate): fails
        only when, besides, the exact one-sided binomial test rejects "share <= limit" at level
        `VOTED_TEST_LEVEL`, so a difference of an image or two between noisy attacks never fires."""
        bound = self.limit if limit is None else limit
        share = count / max(1, n)
        tail = (1 - INTERVAL_LEVEL) / 2
        low = float(beta.ppf(tail, count, n - count + 1)) if count else 0.0
        high = float(beta.ppf(1 - tail, count + 1, n - count)) if count < n else 1.0
        note = f" ({count} of {n}, {100 * INTERVAL_LEVEL:g}% interval {100 * low:.1f}-{100 * high:.1f}%; limit {100 * bound:.1f}%)"
        passed = share <= bound or count < MIN_BREAKS
        if voted:
            p_value = float(binom.sf(count - 1, max(1, n), min(max(bound, 0.0), 1.0)))
            passed = passed or p_value > VOTED_TEST_LEVEL
            note += f"; exact binomial test of share <= limit: p = {p_value:.3g} (fires below {VOTED_TEST_LEVEL:g})"
        return CheckResult(
            self.name, bool(passed), share, float(bound), why + note, phase=self.phase
        )


@dataclass(frozen=True)
class CheckResult:
    """One check: `value` compared with `limit`; `why` says what a failure means."""

    name: str
    passed: bool
    value: float
    limit: float
    why: str
    at_least: bool = False  # runs stored before 0.2: passed when value >= limit
    phase: str = PROBE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CHECKS: Registry[Check] = Registry("check")


def register_check(check: Check) -> Check:
    return CHECKS.add(check.name, check)


GRADIENT_FREE = Remedy(
    "gradients do not reach every sample: Square with 5000 queries (and transfer from a smooth surrogate) on every still-robust sample",
    (BLACK_BOX_BUDGET,),
    transfer=True,
)
SCALE_FREE_LOSSES = Remedy(
    "cross-entropy is unreliable here: scale-invariant DLR and CW-margin losses added", SCALE_FREE
)

register_check(
    Check(
        PROBABILITIES,
        PROBE,
        "share of output rows that are non-negative and sum to 1",
        PROBABILITY_ROWS_LIMIT,
        Remedy("outputs are probabilities: their logarithm is attacked", log_outputs=True),
    )
)
register_check(
    Check(
        DETERMINISTIC,
        PROBE,
        "share of samples whose logits move beyond float rounding (1 % of the row's scale) between two calls of a model that declares no randomness",
        0.0,
        Remedy(
            "undeclared randomness: evaluated as a random model (EOT gradients, points judged by votes)",
            random=True,
        ),
    )
)
register_check(
    Check(
        INPUT_GRADIENTS,
        PROBE,
        "share of samples whose input gradient is zero or not finite",
        DEAD_GRADIENT_LIMIT,
        GRADIENT_FREE,
    )
)
register_check(
    Check(
        LARGE_EPS,
        PROBE,
        "accuracy under PGD-50 at a budget that lets any image become any other",
        LARGE_EPS_CEILING,
        GRADIENT_FREE,
    )
)
register_check(
    Check(
        BLACK_BOX_VS_WHITE_BOX,
        STAGES,
        "share of checked samples a gradient-free stage broke after the gradient stages left them",
        BLACK_BOX_MARGIN,
        GRADIENT_FREE,
    )
)
register_check(
    Check(
        SCALE_INVARIANT_LOSS,
        STAGES,
        "share of checked samples a margin-loss stage broke after cross-entropy left them (limit: at least what cross-entropy broke)",
        MARGIN,
        SCALE_FREE_LOSSES,
    )
)
register_check(
    Check(
        SINGLE_STEP_VS_ITERATIVE,
        STAGES,
        "share of checked samples one FGSM step breaks after the iterative stages left them",
        MARGIN,
        SCALE_FREE_LOSSES,
    )
)
register_check(
    Check(
        MORE_STEPS,
        STAGES,
        "share of checked samples the iterative gradient stages broke only in the last quarter of their steps",
        MARGIN,
        Remedy(
            "the gradient stages had not converged: PGD with 100 steps x 3 restarts added",
            (LONGER,),
        ),
    )
)


@dataclass(frozen=True)
class Escalation:
    """What the failed checks changed (stored with the run; re-applied on resume)."""

    failed: tuple[str, ...] = ()
    random: bool = False
    log_outputs: bool = False
    attacks: tuple[str, ...] = ()
    surrogate: str | None = None
    changes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.random or self.log_outputs or self.attacks)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Escalation":
        if not data:
            return cls()
        return cls(
            tuple(data.get("failed", ())),
            bool(data.get("random")),
            bool(data.get("log_outputs")),
            tuple(data.get("attacks", ())),
            data.get("surrogate"),
            tuple(data.get("changes", ())),
        )

    def merged(self, other: "Escalation") -> "Escalation":
        """Both escalations' changes, in order, each once."""

        def union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(dict.fromkeys((*a, *b)))

        return Escalation(
            union(self.failed, other.failed),
            self.random or other.random,
            self.log_outputs or other.log_outputs,
            union(self.attacks, other.attacks),
            self.surrogate or other.surrogate,
            union(self.changes, other.changes),
        )


def choose(
    results: list[CheckResult], transfer_surrogate: str | None = None, present: tuple[str, ...] = ()
) -> Escalation:
    """The union of the failed checks' remedies. `transfer_surrogate`: the model transfer attacks
    craft on (None: no transfer); `present`: attack labels the evaluation runs already."""
    failed = [r.name for r in results if not r.passed]
    remedies = [CHECKS.get(name).remedy for name in dict.fromkeys(failed)]
    attacks: list[str] = []
    surrogate = None
    for remedy in remedies:
        attacks += remedy.attacks
        if remedy.transfer and transfer_surrogate:
            surrogate = transfer_surrogate
            attacks.append("transfer:pgd:steps=50")
    return Escalation(
        failed=tuple(failed),
        random=any(r.random for r in remedies),
        log_outputs=any(r.log_outputs for r in remedies),
        attacks=tuple(a for a in dict.fromkeys(attacks) if a not in present),
        surrogate=surrogate,
        changes=tuple(dict.fromkeys(r.change for r in remedies)),
    )
