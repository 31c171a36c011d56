"""Which attacks break the images `auto` leaves robust? One Fashion-MNIST model, one threat.

    python benchmarks/auto_misses.py kap-rn18 l2 0.5 200      # model, norm, eps, images (seed 0)
    python benchmarks/auto_misses.py rn18-trades linf 0.1 200 auto:targets=9 "auto:targets=9,t_steps=25"

`auto` runs on the images the model classifies correctly (the same seeded images as
auto_vs_autoattack.py); then each of AutoAttack's components (its own package) and a few
stronger settings of ours (or the attack specs given after the image count) run alone on the
images `auto` left robust, printing which they break and in how many seconds.
Writes docs/runs/diag/MODEL-NORM.json.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from timing import fashion_batch

from advbench.attacks import build_attack
from advbench.core.threat import ThreatModel
from advbench.models.card import load_model

name, norm, eps, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
DEFAULT_SPECS = ["apgd-ce:n_restarts=1", "apgd-t", "fab-t", "square-aa", "apgd:steps=100", "apgd:loss=dlr-targeted,n_target_classes=9,steps=100",
                 "apgd:loss=dlr-targeted,n_target_classes=9,steps=50", "square:n_queries=5000", "apgd:steps=50,restarts=5"]
specs = sys.argv[5:] or DEFAULT_SPECS
model, _ = load_model(name, "fashion-mnist")
x, y, idx = fashion_batch(n, torch.device("cpu"))
threat = ThreatModel(norm, eps)
correct = model.predict(x) == y


def run(spec: str, rows: torch.Tensor) -> tuple[torch.Tensor, float]:
    t = time.perf_counter()
    r = build_attack(spec)[1](model, x[rows], y[rows], threat, idx[rows], seed=0)
    return r.success, time.perf_counter() - t


auto, t = run("auto", correct.nonzero().view(-1))
rows = correct.nonzero().view(-1)[~auto]
print(f"{name} {threat.label()}: {len(rows)} images left robust by auto ({t:.0f} s)", flush=True)
commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True).stdout.strip()
out = {"commit": commit, "model": name, "threat": threat.label(), "auto_robust": idx[rows].tolist(), "broken": {}}
for spec in specs:
    s, t = run(spec, rows)
    out["broken"][spec] = idx[rows][s].tolist()
    print(f"  {spec:55} breaks {int(s.sum())} ({t:.0f} s): {idx[rows][s].tolist()}", flush=True)
if specs is DEFAULT_SPECS:  # the stored record is the default comparison
    json.dump(out, open(Path(__file__).resolve().parents[1] / "docs" / "runs" / "diag" / f"{name}-{norm}.json", "w"), indent=1)
