"""A random model's forward pass at several batch sizes: this tree against a base commit.

Each round times both trees, one subprocess each, in alternating order (same machine, same
images, same threads), and prints the milliseconds per pass of each side and the ratio base/this
per batch size (best of 3 timings of `--passes` passes in each round; every pass gets new
content, so every pass draws new noise). Both sides also save the logits of one seeded pass of
each batch size, and the script says whether they are bit for bit the same: a speed-up of the
draws must not change a stored run's numbers.

    python benchmarks/random_forward.py --model pni-w --base 9a460f4 --rounds 3 --json docs/runs/random-forward-pni-w.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Run inside each tree's subprocess: prints a JSON object of ms per pass by batch size.
CHILD = r"""
import json, sys, time, torch
from advbench.data import load_dataset
from advbench.models.card import load_model
model_name, sizes, passes, logits_path = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(int(sys.argv[5]))
model, _ = load_model(model_name, "fashion-mnist")
images = load_dataset("fashion-mnist", "test").images
ms, logits = {}, {}
with torch.no_grad():
    for size in sizes:
        x = images[:size].clone()
        logits[str(size)] = model.reseed(0)(x)
        best = float("inf")
        for attempt in range(3):
            t0 = time.perf_counter()
            for i in range(passes):
                x[:, 0, 0, 0] = (i + 1) * 1e-3 + attempt  # new content: new draws
                model(x)
            best = min(best, (time.perf_counter() - t0) / passes)
        ms[str(size)] = 1e3 * best
torch.save(logits, logits_path)
print(json.dumps(ms))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pni-w")
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--sizes", default="1,8,16,80,320")
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import torch

    sizes = [int(s) for s in args.sizes.split(",")]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "advbench"], cwd=REPO, capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory(prefix="advbench-base-") as folder:
        base_tree = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), args.base], cwd=REPO, check=True)
        try:
            trees = {"base": base_tree, "this": REPO}
            rounds = []
            for r in range(args.rounds):
                order = ["base", "this"] if r % 2 == 0 else ["this", "base"]
                measured = {}
                for side in order:
                    env = dict(os.environ, PYTHONPATH=str(trees[side]), OMP_NUM_THREADS=str(args.threads))
                    out = subprocess.run(
                        [sys.executable, "-c", CHILD, args.model, json.dumps(sizes), str(args.passes), f"{folder}/{side}.pt", str(args.threads)],
                        cwd=trees[side], env=env, capture_output=True, text=True, check=True,
                    )
                    measured[side] = json.loads(out.stdout.strip().splitlines()[-1])
                rounds.append({"order": order, **measured})
                print(f"round {r}: " + "  ".join(f"{s} rows {measured['base'][str(s)]:.1f} -> {measured['this'][str(s)]:.1f} ms ({measured['base'][str(s)] / measured['this'][str(s)]:.2f}x)" for s in sizes), flush=True)
            base_logits = torch.load(f"{folder}/base.pt", weights_only=True)
            this_logits = torch.load(f"{folder}/this.pt", weights_only=True)
            identical = all(torch.equal(base_logits[k], this_logits[k]) for k in base_logits)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO, check=False)
    ratios = {str(s): sorted(r["base"][str(s)] / r["this"][str(s)] for r in rounds) for s in sizes}
    print("ratio base/this per batch size (median over rounds): " + ", ".join(f"{s}: {v[len(v) // 2]:.2f}x" for s, v in ratios.items()))
    print(f"logits bit for bit the same: {identical}")
    if args.json:
        record = {
            "model": args.model, "base": args.base, "commit": head, "dirty": dirty, "threads": args.threads,
            "passes": args.passes, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "rounds": rounds,
            "median_ratio": {s: v[len(v) // 2] for s, v in ratios.items()}, "identical_logits": identical,
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
