"""Certification summaries computed from the stored certificates (no torch), and the radii grid
every certified-accuracy curve, table and leaderboard uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from advbench.store.sqlite import Store

RADII = [round(0.05 * i, 2) for i in range(0, 41)]  # 0 .. 2.0, the grid of the KAP paper's Fig. 6
REPORTED_RADII = (0.0, 0.25, 0.5, 0.75, 1.0)  # the columns of tables (points of RADII)


@dataclass
class CertifySummary:
    run_id: str
    model: str
    dataset: str
    n: int
    sigmas: list[float]
    # sigma -> {"radii": [...], "certified_accuracy": [...], "abstain": share, "predict_accuracy": share}
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    forward_passes_per_second: float = 0.0
    forward_passes: int = 0
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def certified_accuracy(rows: list[dict[str, Any]], radius: float) -> float:
    """Share of samples certified correct at L2 radius >= `radius` (Cohen et al.'s approximate certified accuracy)."""
    if not rows:
        return 0.0
    return sum(1 for r in rows if r["prediction"] == r["label"] and r["radius"] >= radius) / len(
        rows
    )


def summarize_certificates(store: Store, run_id: str) -> CertifySummary:
    run = store.get_run(run_id)
    rows = store.certificate_rows(run.run_id)
    sigmas = [float(s) for s in run.config["sigmas"]]
    curves = {}
    for sigma in sigmas:
        mine = [r for r in rows if r["sigma"] == sigma]
        curves[f"{sigma:g}"] = {
            "radii": RADII,
            "certified_accuracy": [certified_accuracy(mine, r) for r in RADII],
            "abstain": sum(1 for r in mine if r["prediction"] < 0) / max(1, len(mine)),
            "predict_accuracy": sum(1 for r in mine if r["predict"] == r["label"])
            / max(1, len(mine)),
            "median_radius_correct": _median(
                [r["radius"] for r in mine if r["prediction"] == r["label"]]
            ),
            # Forward passes (n0 + estimation draws) per image: all alike for CERTIFY, spread out by --sequential.
            "passes_per_image": _spread([r["forward_passes"] for r in mine]),
        }
    passes = sum(r["forward_passes"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    n = len({r["sample_idx"] for r in rows})
    return CertifySummary(
        run.run_id,
        run.model,
        run.dataset,
        n,
        sigmas,
        curves,
        passes / seconds if seconds else 0.0,
        passes,
        run.wall_seconds,
    )


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0.0, "max": 0}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": ordered[len(ordered) // 2],
        "mean": sum(ordered) / len(ordered),
        "max": ordered[-1],
    }


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    return values[len(values) // 2] if values else None
