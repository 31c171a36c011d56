"""Leaderboard rows as RobustBench model-info JSON files, ready to submit there.

RobustBench keeps one JSON per model under `model_info/<dataset>/<threat model>/<name>.json`
with string numbers ("91.10", eps "8/255"); its leaderboard generator sorts on `autoattack_acc`,
so every file has one. We write the same tree under the output folder, one file per leaderboard
row (a model checkpoint at one budget):

- `autoattack_acc`: robust accuracy under AutoAttack alone where a merged run ran AutoAttack
  first (on every sample); then `external` holds our worst case over all attacks when that is
  lower, as RobustBench does for stronger evaluations, and `footnote` names the attack.
  Without an AutoAttack run, `autoattack_acc` holds the worst case and `footnote` says it is not
  AutoAttack and which attack found it.
- `reported`: the paper's number only where the paper's setting is the row's, else "".
- `number_forward_passes`: RobustBench's meaning, forward passes per prediction (1: advbench calls
  the model once per prediction). The attacks' cost is in the `advbench` block.
- `link`, `authors`, `venue`, `additional_data`: the store does not keep them; empty / null.
  `name` is the model's name in its paper (else ours), `architecture` the network class when the
  run recorded it.
- `advbench`: what RobustBench has no field for: model and checkpoint, n, worst case and its CI,
  the attack breakdown, verdict, cost, run ids, commit.

A file is named after the model; the checkpoint's hash and the budget are added when the folder
would otherwise hold two files of that name.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from advbench.core.errors import UsageError
from advbench.report.leaderboard import Board, LeaderboardRow

THREAT_MODELS = {"linf": "Linf", "l2": "L2", "l1": "L1", "l0": "L0"}


def eps_text(eps: float) -> str:
    """RobustBench's eps: "8/255" when it is a whole number of 255ths, else the decimal."""
    k = eps * 255
    return f"{round(k)}/255" if eps > 0 and abs(k - round(k)) < 1e-6 else f"{eps:g}"


def _pct(share: float) -> str:
    return f"{100 * share:.2f}"


def model_info(row: LeaderboardRow) -> dict[str, Any]:
    worst = f"{_pct(row.worst_case)}% worst case over {', '.join(row.attacks)}"
    found = f"found by {row.attack}" if row.attack else "no attack broke a sample"
    info: dict[str, Any] = {
        "link": "",
        "name": row.paper_name or row.model,
        "authors": "",
        "additional_data": None,
        "number_forward_passes": 1,
        "dataset": row.dataset,
        "venue": "",
        "architecture": row.architecture,
        "threat_model": THREAT_MODELS.get(row.norm, row.norm),
        "eps": eps_text(row.eps),
        "clean_acc": _pct(row.clean),
        "reported": _pct(row.paper_accuracy) if row.paper_accuracy is not None else "",
    }
    if row.autoattack is not None:
        info["autoattack_acc"] = _pct(row.autoattack)
        if row.worst_case < row.autoattack:
            info["external"] = _pct(row.worst_case)
            info["footnote"] = (
                f"advbench on {row.n} samples: {worst}, {found} (lower than AutoAttack alone)."
            )
        else:
            info["footnote"] = f"advbench on {row.n} samples: AutoAttack."
    else:
        info["autoattack_acc"] = _pct(row.worst_case)
        info["footnote"] = f"Not AutoAttack: advbench on {row.n} samples, {worst}, {found}."
    info["unreliable"] = row.verdict == "unreliable"
    info["advbench"] = {
        "model": row.model,
        "checkpoint_sha256": row.checkpoint,
        "n": row.n,
        "norm": row.norm,
        "eps": row.eps,
        "clean_accuracy": row.clean,
        "worst_case": row.worst_case,
        "worst_case_ci": list(row.worst_case_ci),
        "attack": row.attack,
        "found_by": row.found_by,
        "autoattack": row.autoattack,
        "verdict": row.verdict,
        "passes_per_sample": row.passes_per_sample,
        "passes_lower_bound": row.passes_lower_bound,
        "seconds_per_sample": row.seconds_per_sample,
        "paper_own_setting": row.paper_own_setting,
        "sample_sets": row.sample_sets,
        "runs": row.runs,
        "commit": row.commit,
    }
    return info


def _stem(text: str) -> str:
    """A file name from a model name (external models are named by a path)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def file_paths(boards: list[Board], out: Path) -> list[tuple[LeaderboardRow, Path]]:
    """Each row's file: OUT/<dataset>/<threat model>/<model>[_<sha8>][_eps<eps>].json."""
    rows = [r for b in boards for r in b.rows]
    folder = {id(r): out / _stem(r.dataset) / THREAT_MODELS.get(r.norm, r.norm) for r in rows}
    budgets = Counter(
        (folder[id(r)], r.model, r.checkpoint) for r in rows
    )  # rows of one checkpoint in one folder
    checkpoints = Counter(
        (f, m) for f, m, _ in budgets
    )  # checkpoints of one model name in one folder
    paths = []
    for r in rows:
        stem = _stem(r.model)
        if checkpoints[(folder[id(r)], r.model)] > 1:
            stem += f"_{r.checkpoint[:8]}"
        if budgets[(folder[id(r)], r.model, r.checkpoint)] > 1:
            stem += f"_eps{r.eps:g}"
        paths.append((r, folder[id(r)] / f"{stem}.json"))
    return paths


def write_model_infos(boards: list[Board], out: Path) -> list[Path]:
    """One model-info JSON per leaderboard row under the folder `out`; the paths written."""
    if out.exists() and not out.is_dir():
        raise UsageError(
            f"--out {out} is a file; --format robustbench writes a folder of JSON files"
        )
    written = []
    for row, path in file_paths(boards, out):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(model_info(row), indent=2) + "\n")
        written.append(path)
    return written
