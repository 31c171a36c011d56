"""Do the checks still escalate where they did? The checked shard (`engine.adaptive.check_shard`)
on zoo models whose stored default evaluation escalated, and on some it called reliable.

For each model: the stored run's failed checks (from docs/runs/zoo.sqlite.gz) beside the failed
checks of the checked shard now, on the same first `check_n` images of the run's subset, with
the check shard's time. Prints a table; `--json` stores it.

    python benchmarks/checks_parity.py --json docs/runs/checks-parity.json
    python benchmarks/checks_parity.py --models smooth-tr,hah-vgg16
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from advbench.engine import EvalSpec, Runtime, resolve
from advbench.engine.adaptive import check_shard

REPO = Path(__file__).resolve().parents[1]
RELIABLE_SAMPLE = ("madry-cnn-at", "rn18-at", "kap-rn18", "pfe-madry")


@dataclass
class StoredRun:
    model: str
    eps: list[float]
    norm: str
    n: int | None
    eot: int | None
    check_n: int
    stored_failed: list[str]
    stored_verdict: str


def stored_runs(wanted: set[str]) -> list[StoredRun]:
    """The zoo store's default evaluations: model, eps, n, what failed, verdict."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "zoo.sqlite"
        with gzip.open(REPO / "docs/runs/zoo.sqlite.gz") as src, db.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        conn = sqlite3.connect(db)
        rows = conn.execute("SELECT model, config FROM runs WHERE kind = 'eval' AND status = 'finished' ORDER BY created").fetchall()
        conn.close()
    out: dict[str, StoredRun] = {}
    for model, raw in rows:
        config = json.loads(raw)
        spec = config.get("eval_config") or {}
        if config.get("verdict") is None or spec.get("attacks") != ["auto"] or (wanted and model not in wanted):
            continue
        escalated = bool((config.get("escalation") or {}).get("failed"))
        if model in out and out[model].stored_failed and not escalated:
            continue  # a model's escalated run is the one to compare with
        if escalated or model in RELIABLE_SAMPLE or model in wanted:
            out[model] = StoredRun(model, spec["eps"], spec.get("norm", "linf"), spec.get("n"), spec.get("eot"), spec.get("check_n", 100),
                                   (config.get("escalation") or {}).get("failed", []), config["verdict"])
    return list(out.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo models (default: every escalated one and a reliable sample)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    wanted = {m.strip() for m in args.models.split(",") if m.strip()}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    rows = []
    print(f"{'model':24} {'stored failed':40} {'now failed':40} {'verdict':10} {'s':>6}")
    for run in stored_runs(wanted):
        spec = EvalSpec(model=run.model, eps=tuple(run.eps), norm=run.norm, n=run.n, eot=run.eot, check_n=run.check_n)
        plan = resolve(spec, Runtime(device="cpu"))
        t0 = time.perf_counter()
        shard, _ = check_shard(plan, plan.indices[: plan.check_n].tolist())
        seconds = time.perf_counter() - t0
        failed = [r.name for r in shard.results if not r.passed]
        rows.append({**asdict(run), "now_failed": failed, "now_verdict": shard.verdict, "numbers": shard.numbers, "seconds": seconds,
                     "checks_seconds": shard.seconds})
        print(f"{run.model:24} {','.join(run.stored_failed) or '-':40} {','.join(failed) or '-':40} {shard.verdict:10} {seconds:6.0f}", flush=True)
        if args.json:  # after every model: a long run keeps what it measured
            args.json.write_text(json.dumps({"commit": commit, "torch_threads": torch.get_num_threads(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
