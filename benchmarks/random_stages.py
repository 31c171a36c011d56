"""Which stages and EOT draws `auto` should run on random models: robust accuracy (every point
judged by a vote) and seconds of each variant on the first N Fashion-MNIST test images, Linf 0.1.

    python benchmarks/random_stages.py pni-w 64 [THREADS] [--plan 5:auto,2:auto ...]

A plan item is EOT:variant, or EOT/CAP:variant to cap the votes that confirm early stops at CAP
draws (`AttackedModel.confirm_draws`; 128, the vote's own cap, is the rule before the cap existed):

    python benchmarks/random_stages.py pni-w 200 --plan 5/128:auto,5/16:auto

Prints one JSON line per (EOT draws, variant), then for every variant after the first the exact
McNemar test against the first on the same images (the images only one of the two leaves robust),
so "fewer draws lose nothing" is a tested claim, not a difference of two noisy figures. The
variants are built from APGD directly, so the figures do not depend on `auto`'s defaults at the
time of the run (`auto` is run with the plan's EOT draws, whatever its `random_eot`).
"""

import argparse
import json
import subprocess
import time
from pathlib import Path

import torch
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from advbench.attacks.apgd import APGD, APGDConfig
from advbench.attacks.auto import Auto
from advbench.attacks.ensemble import robust_ensemble
from advbench.attacks.wrappers import CONFIRM_DRAWS, AttackedModel
from advbench.core.threat import parse_threat
from advbench.data import load_dataset
from advbench.models.card import load_model

VARIANTS = {
    "ce50+t3(clean)": lambda: [
        ("ce", APGD(APGDConfig(steps=50))),
        ("t", APGD(APGDConfig(steps=50, loss="dlr-targeted", n_target_classes=3))),
    ],
    "ce50+dlr50": lambda: [
        ("ce", APGD(APGDConfig(steps=50))),
        ("dlr", APGD(APGDConfig(steps=50, loss="dlr"))),
    ],
    "ce100+dlr100 (AA rand-like)": lambda: [
        ("ce", APGD(APGDConfig(steps=100))),
        ("dlr", APGD(APGDConfig(steps=100, loss="dlr"))),
    ],
    "auto": lambda: [("auto", Auto())],
}
# The plan the stages were chosen with on pni-w (docs/notes/performance.md).
STAGES_PLAN = "5:ce50+t3(clean),5:ce50+dlr50,5:auto,10:ce50+dlr50,10:ce50+t3(clean),20:ce100+dlr100 (AA rand-like),20:auto"

REPO = Path(__file__).resolve().parents[1]
COMMIT = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
).stdout.strip() + (
    "-dirty"
    if subprocess.run(["git", "status", "--porcelain", "advbench"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    else ""
)

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("n", type=int)
parser.add_argument("threads", type=int, nargs="?", default=1)
parser.add_argument(
    "--plan", default=STAGES_PLAN, help="comma-separated EOT:variant, the first is the reference"
)
args = parser.parse_args()
plan = [(head, label) for head, label in (item.split(":", 1) for item in args.plan.split(","))]
unknown = sorted({label for _, label in plan} - set(VARIANTS))
if unknown:
    parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")

torch.set_num_threads(args.threads)
m, _ = load_model(args.model, "fashion-mnist")
d = load_dataset("fashion-mnist", "test")
x, y = d.images[: args.n], d.labels[: args.n]
idx = torch.arange(args.n)
threat = parse_threat("linf:0.1")
robust_masks: list[torch.Tensor] = []
for head, label in plan:
    eot, _, cap = head.partition("/")
    m.reseed(0)
    view = AttackedModel(m, int(eot), confirm_draws=int(cap) if cap else CONFIRM_DRAWS)
    correct = ~view.judge(x, y).wrong
    t = time.perf_counter()
    (o,) = robust_ensemble(
        [(stage, a, view) for stage, a in VARIANTS[label]()], x, y, [threat], idx, 0, correct
    )
    sec = time.perf_counter() - t
    robust_masks.append(o.robust.cpu())
    row = {
        "model": args.model,
        "eot": int(eot),
        "confirm_draws": view.confirm.cap,
        "variant": label,
        "robust": float(o.robust.float().mean()),
        # Clopper-Pearson 95 % interval of the robust share of the n images
        "robust_ci": [
            float(v) for v in proportion_confint(int(o.robust.sum()), args.n, method="beta")
        ],
        "seconds": sec,
        "commit": COMMIT,
        "clean": float(correct.float().mean()),
    }
    print(json.dumps(row), flush=True)
reference = robust_masks[0]
for (eot, label), robust in zip(plan[1:], robust_masks[1:]):
    only_this, only_reference = int((robust & ~reference).sum()), int((reference & ~robust).sum())
    p = (
        float(binomtest(only_this, only_this + only_reference, 0.5).pvalue)
        if only_this + only_reference
        else 1.0
    )
    print(
        json.dumps(
            {
                "vs": f"{plan[0][0]}:{plan[0][1]}",
                "variant": f"{eot}:{label}",
                "robust_only_here": only_this,
                "robust_only_reference": only_reference,
                "mcnemar_p": p,
            }
        ),
        flush=True,
    )
