"""One panel row from several `benchmarks/auto_vs_autoattack.py` reports on disjoint images.

A row too slow to measure in one sitting (the random model) is measured in parts:
`--skip 0 --n-slow 50`, then `--skip 50 --n-slow 150`. This prints, per model, the row over all
parts in docs/notes/performance.md's format: counts are summed from each part's images, the pass counts
are total seconds over the summed floors (each part's floor is its seconds over its passes), and
the image lists are joined.

    python scripts/merge_auto_vs_aa.py docs/runs/auto-vs-autoattack-cpni.json docs/runs/auto-vs-autoattack-cpni-51-200.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class MergedRow:
    model: str
    threat: str
    images: int = 0
    clean: int = 0
    robust_auto: int = 0
    robust_autoattack: int = 0
    seconds_auto: float = 0.0
    seconds_autoattack: float = 0.0
    floor_seconds: float = 0.0  # summed bare forward+backward passes over each part's batch
    autoattack_broke_auto_missed: list[int] = field(default_factory=list)
    auto_broke_autoattack_missed: list[int] = field(default_factory=list)
    parts: list[tuple[int, int]] = field(default_factory=list)  # (skip, n) of each part

    def add(self, row: dict) -> None:
        skip, n = row.get("skip", 0), row["n"]
        for start, size in self.parts:
            if skip < start + size and start < skip + n:
                raise ValueError(f"{self.model}: images {skip + 1}-{skip + n} overlap a part with images {start + 1}-{start + size}")
        self.parts.append((skip, n))
        self.images += n
        self.clean += round(row["clean"] * n)
        self.robust_auto += round(row["robust_auto"] * n)
        self.robust_autoattack += round(row["robust_autoattack"] * n)
        self.seconds_auto += row["seconds_auto"]
        self.seconds_autoattack += row["seconds_autoattack"]
        self.floor_seconds += row["seconds_auto"] / row["auto_in_forward_backward_passes"]
        self.autoattack_broke_auto_missed += row["autoattack_broke_auto_missed"]
        self.auto_broke_autoattack_missed += row["auto_broke_autoattack_missed"]

    @property
    def autoattack_breaks(self) -> int:
        return self.clean - self.robust_autoattack

    @property
    def caught(self) -> float:
        breaks = self.autoattack_breaks
        return (breaks - len(self.autoattack_broke_auto_missed)) / breaks if breaks else 1.0

    def row(self) -> str:
        pct = 100 / self.images
        return (f"| {self.model} ({self.images} images) | {self.threat} | {pct * self.clean:.1f} | {pct * self.robust_auto:.1f} | "
                f"{pct * self.robust_autoattack:.1f} | {100 * self.caught:.1f} % | {self.seconds_auto:.1f} | {self.seconds_autoattack:.1f} | "
                f"**{self.seconds_autoattack / self.seconds_auto:.1f}x** | {self.seconds_auto / self.floor_seconds:.0f} | "
                f"{self.seconds_autoattack / self.floor_seconds:.0f} |")


def merge(reports: list[dict]) -> list[MergedRow]:
    """Rows of the same model and threat across `reports`, each merged over its parts."""
    merged: dict[tuple[str, str], MergedRow] = {}
    for report in reports:
        for row in report["rows"]:
            key = (row["model"], row["threat"])
            merged.setdefault(key, MergedRow(*key)).add(row)
    return list(merged.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+")
    args = parser.parse_args()
    try:
        rows = merge([json.loads(path.read_text()) for path in args.reports])
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for row in rows:
        print(row.row())
        print(f"  parts (skip, n): {row.parts}; AutoAttack breaks {row.autoattack_breaks}, `auto` missed "
              f"{row.autoattack_broke_auto_missed}, `auto` broke beyond AutoAttack {row.auto_broke_autoattack_missed}")


if __name__ == "__main__":
    main()
