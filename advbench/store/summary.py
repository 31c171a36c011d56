"""Accuracies computed from the stored rows, so a resumed run reports exactly what it stored."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from advbench.store.sqlite import Store


@dataclass
class EpsSummary:
    """One eps of a run: robust accuracy after each attack in order and the worst case per sample
    over every attack that ran."""

    eps: float
    robust_after: dict[str, float]  # attack -> robust accuracy after it and every attack before it
    worst_case: float  # over every attack that ran, the checks' probe attacks included
    median_distance: dict[str, float | None] = field(default_factory=dict)
    broken_by_checks_only: int = (
        0  # samples only a check's probe attack broke (counted in worst_case)
    )
    # Random models judged by votes: the mean over samples of P(correct) at each sample's worst
    # point (lowest estimated P(correct) over the clean input and every attack's point), and the
    # standard deviation of those per-sample estimates (for the interval); None for one-pass runs.
    expected_robust: float | None = None
    expected_robust_sd: float | None = None
    undecided: int = (
        0  # samples whose worst point's vote reached its cap undecided (counted robust)
    )


@dataclass
class RunSummary:
    """A stored run's headline: model, data, clean accuracy, one `EpsSummary` per eps, wall time
    and verdict."""

    run_id: str
    model: str
    dataset: str
    norm: str
    attacks: list[str]
    n: int
    clean_accuracy: float
    per_eps: list[EpsSummary]
    wall_seconds: float
    verdict: str | None = (
        None  # reliable | escalated | unreliable (adaptive evaluation); None: checks off
    )
    # Random models judged by votes: the clean counterpart of `EpsSummary.expected_robust`.
    clean_expected: float | None = None
    clean_expected_sd: float | None = None
    vote_test: str | None = None  # the vote's sequential test, in words

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(store: Store, run_id: str) -> RunSummary:
    run = store.get_run(run_id)
    config = run.config
    attacks: list[str] = config["attack_names"]
    probes: list[str] = config.get("probe_names") or []
    clean = store.clean_rows(run.run_id)
    n = len(clean)
    correct = {idx for idx, label, pred in clean if label == pred}
    clean_correct = len(correct)
    votes = store.clean_votes(run.run_id)
    clean_p = {idx: hits / draws for idx, (hits, draws) in votes.items() if draws}
    by_eps: dict[float, dict[str, list[dict[str, Any]]]] = {}
    for row in store.sample_rows(run.run_id):
        by_eps.setdefault(row["eps"], {}).setdefault(row["attack"], []).append(row)
    per_eps = []
    for eps in config["eps"]:
        rows = by_eps.get(float(eps), {})
        broken: set[int] = set()
        robust_after, median = {}, {}
        for attack in attacks:
            attacked = [r for r in rows.get(attack, []) if r["status"] == "attacked"]
            broken |= {r["sample_idx"] for r in attacked if r["success"]} & correct
            robust_after[attack] = (clean_correct - len(broken)) / n if n else 0.0
            dists = sorted(
                r["distance"] for r in attacked if r["success"] and r["distance"] is not None
            )
            median[attack] = dists[len(dists) // 2] if dists else None
        # Worst case means worst case: what the checks' probes broke counts too (only samples correct
        # on the clean pass: a probe may have judged a random model's draw differently).
        by_probes = {
            r["sample_idx"]
            for p in probes
            for r in rows.get(p, [])
            if r["status"] == "attacked" and r["success"]
        } & correct
        worst = (clean_correct - len(broken | by_probes)) / n if n else 0.0
        summary = EpsSummary(float(eps), robust_after, worst, median, len(by_probes - broken))
        if clean_p:
            _expected(summary, clean_p, rows, broken | by_probes, config.get("vote") or {})
        per_eps.append(summary)
    return RunSummary(
        run.run_id,
        run.model,
        run.dataset,
        config["norm"],
        attacks,
        n,
        clean_correct / n if n else 0.0,
        per_eps,
        run.wall_seconds,
        config.get("verdict"),
        *_mean_sd(list(clean_p.values())),
        (config.get("vote") or {}).get("test") if clean_p else None,
    )


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _expected(
    summary: EpsSummary,
    clean_p: dict[int, float],
    rows: dict[str, list[dict[str, Any]]],
    broken: set[int],
    rule: dict[str, Any],
) -> None:
    """A random model's expected robust accuracy: per sample, the lowest estimated P(correct) over
    its clean input and every point an attack judged; their mean and spread. `rule`: the run's
    vote (`config["vote"]`: its cap and the draws that decide at the cap)."""
    worst = dict(clean_p)
    at_cap: dict[int, bool] = {}
    cap, needed = rule.get("cap"), rule.get("needed_at_cap")
    for attack_rows in rows.values():
        for r in attack_rows:
            if r.get("draws"):
                hits, draws = r["correct_draws"], r["draws"]
                if hits / draws < worst.get(r["sample_idx"], 1.0):
                    worst[r["sample_idx"]] = hits / draws
                    at_cap[r["sample_idx"]] = (
                        draws == cap and needed is not None and max(hits, draws - hits) < needed
                    )
    summary.expected_robust, summary.expected_robust_sd = _mean_sd(list(worst.values()))
    summary.undecided = sum(1 for i, u in at_cap.items() if u and i not in broken)
