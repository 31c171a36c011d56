"""Accuracies computed from the stored rows, so a resumed run reports exactly what it stored."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from advbench.store.sqlite import Store


@dataclass
class EpsSummary:
    eps: float
    robust_after: dict[str, float]  # attack -> robust accuracy after it and every attack before it
    worst_case: float
    median_distance: dict[str, float | None] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: str
    model: str
    dataset: str
    norm: str
    attacks: list[str]
    n: int
    clean_accuracy: float
    per_eps: list[EpsSummary]
    wall_seconds: float
    verdict: str | None = None  # reliable | escalated | unreliable (adaptive evaluation); None: checks off

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(store: Store, run_id: str) -> RunSummary:
    run = store.get_run(run_id)
    config = run.config
    attacks: list[str] = config["attack_names"]
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
            # Only samples correct on the clean pass count (a check's probe may have judged a random model's draw differently).
            broken |= {r["sample_idx"] for r in attacked if r["success"]} & correct
            robust_after[attack] = (clean_correct - len(broken)) / n if n else 0.0
            dists = sorted(r["distance"] for r in attacked if r["success"] and r["distance"] is not None)
            median[attack] = dists[len(dists) // 2] if dists else None
        worst = (clean_correct - len(broken)) / n if n else 0.0
        per_eps.append(EpsSummary(float(eps), robust_after, worst, median))
    return RunSummary(
        run.run_id, run.model, run.dataset, config["norm"], attacks, n, clean_correct / n if n else 0.0, per_eps, run.wall_seconds,
        config.get("verdict"),
    )
