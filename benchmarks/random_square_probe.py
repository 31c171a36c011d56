"""The checks' Square probe on a model random at inference: what each query budget breaks, and when.

The probe attacks the images a stored zoo run left robust in its checked samples (the rows of
its `check:square-500` probe, from docs/runs/zoo.sqlite.gz), with Square at each budget, as the
checks run it (the probe's view: votes judge every final point, 20 EOT draws), the same seed for
every budget. Prints one JSON object per budget: seconds, breaks (vote-confirmed), the images
broken, the query at which each broke, and how many rows stopped early on a lucky pass that the
vote then called robust; then the exact McNemar test of each budget against the first on the
same images.

    python benchmarks/random_square_probe.py sc-frontend 2e3bf2ff84e9 --budgets 500,100 --json docs/runs/random-square-probe-sc-frontend.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from scipy.stats import binomtest

from advbench.attacks.blackbox import Square, SquareConfig
from advbench.attacks.wrappers import EOT_DRAWS_RANDOM_MODEL, AttackedModel
from advbench.core.threat import parse_threat
from advbench.data import load_dataset
from advbench.models.card import load_model

REPO = Path(__file__).resolve().parents[1]


def probed_images(run_id: str) -> list[int]:
    """The images the stored run's Square probe attacked (its checked samples left robust)."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "zoo.sqlite"
        with gzip.open(REPO / "docs/runs/zoo.sqlite.gz") as src, db.open("wb") as dst:
            dst.write(src.read())
        with sqlite3.connect(db) as con:
            rows = con.execute(
                "select sample_idx from samples where run_id = ? and attack = 'check:square-500' order by sample_idx",
                (run_id,),
            ).fetchall()
    if not rows:
        raise SystemExit(f"run {run_id} has no check:square-500 rows in docs/runs/zoo.sqlite.gz")
    return [r[0] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("run_id", help="a zoo run of the model whose checks ran the Square probe")
    parser.add_argument("--budgets", default="500,100")
    parser.add_argument("--threat", default="linf:0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    indices = probed_images(args.run_id)
    model, _ = load_model(args.model, "fashion-mnist")
    data = load_dataset("fashion-mnist", "test")
    idx = torch.tensor(indices)
    x, y = data.images[idx], data.labels[idx]
    view = AttackedModel(model, EOT_DRAWS_RANDOM_MODEL, random=True)
    threat = parse_threat(args.threat)
    rows, broken = [], {}
    for queries in budgets:
        model.reseed(args.seed)
        t0 = time.perf_counter()
        result = Square(SquareConfig(n_queries=queries))(view, x, y, threat, idx, args.seed)
        seconds = time.perf_counter() - t0
        hit = result.success
        broken[queries] = hit
        row = {
            "model": args.model, "run_id": args.run_id, "n": len(indices), "queries": queries,
            "seconds": seconds, "breaks": int(hit.sum()), "broken_images": idx[hit].tolist(),
            "queries_at_break": result.steps[hit].tolist(),
            "lucky_stops_judged_robust": int(((result.steps < queries) & ~hit).sum()),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    first = budgets[0]
    tests = []
    for queries in budgets[1:]:
        only_first = int((broken[first] & ~broken[queries]).sum())
        only_this = int((broken[queries] & ~broken[first]).sum())
        p = binomtest(only_first, only_first + only_this).pvalue if only_first + only_this else 1.0
        tests.append({"against": first, "queries": queries, f"only_{first}": only_first, f"only_{queries}": only_this, "mcnemar_p": p})
        print(f"Square-{queries} vs Square-{first}: {only_this} images broken only by {queries}, {only_first} only by {first} (exact McNemar p = {p:.3g})")
    if args.json:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        args.json.write_text(json.dumps({"commit": commit, "threads": torch.get_num_threads(), "rows": rows, "tests": tests}, indent=1) + "\n")


if __name__ == "__main__":
    main()
