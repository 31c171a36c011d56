"""The figures docs/notes/performance.md quotes from a `benchmarks/certify_efficiency.py` report.

Per cell: the table row (passes, ratio, seconds, certified accuracy of both methods, sequential
passes per image as median / max / images at the cap) and where the sequential passes go: how
many images have a fixed-N radius within `--near` of an asked radius (other than 0) and their
share of the cell's passes, and the fixed-N radius of every image that ran to the cap.

    python scripts/certify_summary.py docs/runs/certify-efficiency.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CellSummary:
    model: str
    sigma: float
    images: int
    fixed_passes: int
    sequential_passes: int
    fixed_seconds: float
    sequential_seconds: float
    fixed_accuracy: list[float]
    sequential_accuracy: list[float]
    median_passes: float
    max_passes: int
    at_cap: list[float]  # fixed-N radii of the images that used the whole budget
    near: int  # images whose fixed-N radius lies within `near_width` of an asked radius
    near_share: float  # their share of the cell's sequential passes

    @property
    def ratio(self) -> float:
        return self.fixed_passes / self.sequential_passes

    def row(self) -> str:
        def acc(values: list[float]) -> str:
            return " / ".join(f"{100 * v:.1f}".removesuffix(".0") for v in values)

        return (f"| {self.model} | {self.sigma:g} | {self.images} | {self.fixed_passes:,} | {self.sequential_passes:,} | **{self.ratio:.1f}x** "
                f"| {self.fixed_seconds:.0f} | {self.sequential_seconds:.0f} | {acc(self.fixed_accuracy)} | {acc(self.sequential_accuracy)} "
                f"| {self.median_passes:,.0f} / {self.max_passes:,} / {len(self.at_cap)} |")


def budget_cap(report: dict) -> int:
    """The most passes an image can use: n0 selection draws plus the N estimation draws."""
    return report["n0"] + report["noise_draws"]


def summarize(report: dict, near_width: float = 0.03) -> list[CellSummary]:
    """One summary per cell of the report."""
    cap = budget_cap(report)
    asked = [r for r in report["radii"] if r > 0]
    out = []
    for cell in report["cells"]:
        fixed, seq = cell["fixed"], cell["sequential"]
        draws = seq["draws_per_image"]
        near = [any(abs(radius - r) <= near_width for r in asked) for radius in fixed["radius"]]
        out.append(CellSummary(
            cell["model"], cell["sigma"], len(draws), fixed["forward_passes"], seq["forward_passes"], fixed["seconds"], seq["seconds"],
            fixed["certified_accuracy"], seq["certified_accuracy"], statistics.median(draws), max(draws),
            [radius for radius, d in zip(fixed["radius"], draws) if d >= cap], sum(near),
            sum(d for d, close in zip(draws, near) if close) / seq["forward_passes"],
        ))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--near", type=float, default=0.03, help="width around an asked radius that counts as near")
    args = parser.parse_args()
    report = json.loads(args.report.read_text())
    cells = summarize(report, args.near)
    for cell in cells:
        print(cell.row())
    fixed, seq = sum(c.fixed_passes for c in cells), sum(c.sequential_passes for c in cells)
    print(f"overall: {fixed:,} fixed against {seq:,} sequential passes, {fixed / seq:.1f}x")
    for c in cells:
        print(f"{c.model} sigma {c.sigma:g}: {c.near} images within {args.near} of an asked radius take {100 * c.near_share:.0f} % "
              f"of the passes; at the cap: {', '.join(f'{r:.4f}' for r in c.at_cap) or 'none'}")
    at_cap = sum(len(c.at_cap) for c in cells)
    print(f"images at the cap: {at_cap}, {100 * at_cap * budget_cap(report) / seq:.0f} % of all sequential passes")

if __name__ == "__main__":
    main()
