"""Two evaluations compared on the images both measured, by paired tests.

Two robust accuracies are compared only on the same images, image by image, never as two
figures with overlapping or disjoint intervals:

- **Robust accuracy**: the exact McNemar test (two-sided binomial test of 1/2 on the images only
  one side holds: robust under one, misclassified or broken under the other). The shared images
  carry no information about the difference, so it tests far more sharply than two intervals.
- **Expected robust accuracy** (models random at inference, judged by votes): a paired t-test on
  the per-image difference of P(correct) at each image's worst point, with the 95 % t-interval of
  the mean difference.

Each side is a model name (every finished evaluation of it at the budget, merged per sample as a
leaderboard row merges them) or one run id. Where a side's runs cover several sets of images,
the pair of sets sharing the most images is compared. Figures on no common image are refused.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy.stats import binomtest, t, ttest_rel

from advbench.core.errors import UsageError
from advbench.report.intervals import wilson
from advbench.report.merge import RunRows, SampleOutcomes, Threat, sample_outcomes
from advbench.report.model_report import find_runs
from advbench.store import Store
from advbench.store.sqlite import RunRecord

LEVEL = 0.05  # two-sided


@dataclass(frozen=True)
class Side:
    """One side's figures on the common images."""

    label: str  # the model name or run id given
    model: str
    run_ids: tuple[str, ...]
    robust: float
    robust_ci: tuple[float, float]  # Wilson, 95 %
    expected: float | None  # mean P(correct) at the worst point (random models)
    judged_by: str  # "vote" (a model random at inference) or "one pass"


@dataclass(frozen=True)
class PairedComparison:
    threat: Threat
    n: int  # images both sides measured
    a: Side
    b: Side
    only_a: int  # images robust under a only
    only_b: int
    mcnemar_p: float
    expected_difference: float | None  # a - b, where both sides voted
    expected_ci: tuple[float, float] | None
    expected_p: float | None
    level: float = LEVEL

    @property
    def robust_finding(self) -> str:
        return _finding(self.a.label, self.b.label, self.only_a - self.only_b, self.mcnemar_p)

    @property
    def expected_finding(self) -> str | None:
        if self.expected_difference is None or self.expected_p is None:
            return None
        return _finding(self.a.label, self.b.label, self.expected_difference, self.expected_p)

    def to_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "robust_finding": self.robust_finding,
            "expected_finding": self.expected_finding,
        }


def _finding(a: str, b: str, difference: float, p: float) -> str:
    if p >= LEVEL or difference == 0:
        return f"no significant difference at {LEVEL:g}"
    return f"{a if difference > 0 else b} more robust (p < {LEVEL:g})"


def _runs_at(store: Store, target: str) -> tuple[str, list[RunRecord]]:
    model, runs, _ = find_runs(store, target)
    runs = [r for r in runs if r.kind == "eval"]
    if not runs:
        raise UsageError(f"{target!r} has no finished evaluation to compare")
    return model, runs


def _threats(runs: list[RunRecord]) -> set[Threat]:
    return {
        Threat(r.dataset, r.config["norm"], float(e)) for r in runs for e in r.config.get("eps", [])
    }


def _pick_threat(
    a: list[RunRecord], b: list[RunRecord], norm: str | None, eps: float | None
) -> Threat:
    common = sorted(_threats(a) & _threats(b))
    chosen = [
        th
        for th in common
        if (norm is None or th.norm == norm)
        and (eps is None or math.isclose(th.eps, eps, rel_tol=1e-9, abs_tol=1e-12))
    ]
    if len(chosen) == 1:
        return chosen[0]
    shared = ", ".join(f"{th.norm}:{th.eps:g} ({th.dataset})" for th in common) or "none"
    if not chosen:
        raise UsageError(f"no budget both sides measured matches; budgets in common: {shared}")
    raise UsageError(f"both sides measured several budgets ({shared}): choose one with --threat")


def _at(runs: list[RunRecord], threat: Threat) -> list[RunRecord]:
    return [
        r
        for r in runs
        if r.dataset == threat.dataset
        and r.config["norm"] == threat.norm
        and any(math.isclose(float(e), threat.eps, rel_tol=1e-9) for e in r.config.get("eps", []))
    ]


def _side(label: str, model: str, outcomes: SampleOutcomes, common: list[int]) -> Side:
    held = sum(outcomes.robust[i] for i in common)
    voted = bool(outcomes.p_correct) and all(i in outcomes.p_correct for i in common)
    return Side(
        label,
        model,
        outcomes.run_ids,
        held / len(common),
        wilson(held / len(common), len(common)),
        sum(outcomes.p_correct[i] for i in common) / len(common) if voted else None,
        "vote" if outcomes.p_correct else "one pass",
    )


def compare_evaluations(
    store: Store, a: str, b: str, norm: str | None = None, eps: float | None = None
) -> PairedComparison:
    """Compare `a` and `b` (each a model name or a run id) on the images both measured at one
    budget (the only one they share, or the one `norm` and `eps` pick)."""
    model_a, runs_a = _runs_at(store, a)
    model_b, runs_b = _runs_at(store, b)
    threat = _pick_threat(runs_a, runs_b, norm, eps)
    rows = RunRows(store)
    sets_a = sample_outcomes(rows, _at(runs_a, threat), threat.eps)
    sets_b = sample_outcomes(rows, _at(runs_b, threat), threat.eps)
    pairs = [(len(x.robust.keys() & y.robust.keys()), x, y) for x in sets_a for y in sets_b]
    n, out_a, out_b = max(pairs, key=lambda p: p[0])
    if n == 0:
        raise UsageError(f"{a!r} and {b!r} share no image at {threat.label}: nothing to pair")
    common = sorted(out_a.robust.keys() & out_b.robust.keys())
    only_a = sum(out_a.robust[i] and not out_b.robust[i] for i in common)
    only_b = sum(out_b.robust[i] and not out_a.robust[i] for i in common)
    side_a, side_b = _side(a, model_a, out_a, common), _side(b, model_b, out_b, common)
    difference = ci = p_expected = None
    if side_a.expected is not None and side_b.expected is not None:
        deltas = [out_a.p_correct[i] - out_b.p_correct[i] for i in common]
        difference = sum(deltas) / n
        if n > 1 and any(d != deltas[0] for d in deltas):
            p_expected = float(
                ttest_rel(
                    [out_a.p_correct[i] for i in common], [out_b.p_correct[i] for i in common]
                ).pvalue
            )
            sd = math.sqrt(sum((d - difference) ** 2 for d in deltas) / (n - 1))
            half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
            ci = (difference - half, difference + half)
        else:  # every image moved by the same amount: a t-test needs spread, so claim nothing
            p_expected, ci = 1.0, (difference, difference)
    return PairedComparison(
        threat,
        n,
        side_a,
        side_b,
        only_a,
        only_b,
        float(binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0,
        difference,
        ci,
        p_expected,
    )
