"""The CI regression gate: compare stored robust accuracies with a baseline file.

A baseline entry is (model, dataset, norm, eps, attack, accuracy, n); "attack" is an attack
label or "worst case". A drop larger than the tolerance (in points) fails, and with `stat` a
drop that a one-sided two-proportion z-test (statsmodels) finds significant at 5% fails too. A
current result whose evaluation is `unreliable` fails the gate unless the caller allows it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from statsmodels.stats.proportion import proportions_ztest

from advbench.core.errors import UsageError
from advbench.report.leaderboard import LeaderboardRow, build_leaderboard
from advbench.store import Store

WORST = "worst case"


@dataclass
class Entry:
    model: str
    dataset: str
    norm: str
    eps: float
    attack: str
    accuracy: float
    n: int


@dataclass
class Comparison:
    entry: Entry
    current: float | None  # None: no stored result for this entry
    current_n: int
    drop_points: float | None
    p_value: float | None
    regressed: bool
    verdict: str = ""  # the current run's reliability verdict

    @property
    def unreliable(self) -> bool:
        return self.verdict == "unreliable"


def current_entries(store: Store, dataset: str | None = None) -> list[Entry]:
    entries = []
    for row in build_leaderboard(store, dataset):
        entries += [Entry(row.model, row.dataset, row.norm, row.eps, attack, acc, row.n) for attack, acc in row.robust.items()]
        entries.append(Entry(row.model, row.dataset, row.norm, row.eps, WORST, row.worst_case, row.n))
    return entries


def write_baseline(path: Path, entries: list[Entry]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"entries": [asdict(e) for e in entries]}, indent=2) + "\n")


def read_baseline(path: Path) -> list[Entry]:
    try:
        data = json.loads(Path(path).read_text())
        return [Entry(**e) for e in data["entries"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read baseline {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _lookup(rows: list[LeaderboardRow], e: Entry) -> tuple[float, int, str] | None:
    for row in rows:
        if (row.model, row.dataset, row.norm) == (e.model, e.dataset, e.norm) and math.isclose(row.eps, e.eps, rel_tol=1e-6):
            if e.attack == WORST:
                return row.worst_case, row.n, row.verdict
            if e.attack in row.robust:
                return row.robust[e.attack], row.n, row.verdict
    return None


def compare(store: Store, baseline: list[Entry], tolerance: float = 1.0, stat: bool = False) -> list[Comparison]:
    rows = build_leaderboard(store)
    out = []
    for e in baseline:
        found = _lookup(rows, e)
        if found is None:
            out.append(Comparison(e, None, 0, None, None, True))  # a result that vanished is a failure, not a pass
            continue
        acc, n, verdict = found
        drop = 100 * (e.accuracy - acc)
        p_value = None
        if stat and n and e.n:
            count = [round(e.accuracy * e.n), round(acc * n)]
            if count[0] != count[1] or e.n != n:
                # H1: the baseline accuracy is larger than the current one.
                p_value = float(proportions_ztest(count, [e.n, n], alternative="larger")[1])
        regressed = drop > tolerance or (p_value is not None and p_value < 0.05 and drop > 0)
        out.append(Comparison(e, acc, n, drop, p_value, regressed, verdict))
    return out
