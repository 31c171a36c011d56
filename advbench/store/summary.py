"""Accuracies computed from the stored rows, so a resumed run reports exactly what it stored."""

from __future__ import annotations

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
        per_eps.append(EpsSummary(float(eps), robust_after, worst, median, len(by_probes - broken)))
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
    )
