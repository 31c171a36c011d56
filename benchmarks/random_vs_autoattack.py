"""`auto` against AutoAttack `rand` on models random at inference, both judged by the same vote.

Per model: the first N Fashion-MNIST test images; the clean images judged once by a vote
(`models.vote`); then, on the images that vote calls correct, `auto` and AutoAttack `rand`
(`pyautoattack`, APGD-CE and APGD-DLR with 20 EOT draws, through advbench's attack contract),
in alternating order. Each side's final points are judged by the same vote rule, so neither is
credited with a lucky forward pass. Prints and stores per model: both times, both robust
accuracies (vote-judged, with their Clopper-Pearson intervals), the per-image agreement, `caught`
(the share of AutoAttack's vote-confirmed breaks that `auto` also makes) and the noise floor:
how often two runs of the same side with different seeds disagree per image (for AutoAttack only
with --floor-autoattack: it doubles the cost). The second runs' seconds are stored too
(`seconds_again`): the times are measured one after another, so a second pair shows how much the
machine's load moved them.

    python benchmarks/random_vs_autoattack.py --models pni-w cpni-a --n 100 --json docs/runs/random-vs-autoattack.json

Rows already in --json for the same (model, n, eps, commit) are kept, so the panel can be built
one model at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import torch
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from advbench.attacks import build_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.threat import parse_threat
from advbench.data import load_dataset
from advbench.models.card import load_model

REPO = Path(__file__).resolve().parents[1]


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "advbench", "benchmarks"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return head + ("-dirty" if dirty else "")


def side(spec: str, model, x, y, idx, threat, seed: int) -> tuple[float, torch.Tensor]:
    """(seconds, broken per image): one attack on the images, judged by its view's vote."""
    attack = build_attack(spec)[1]
    view = attack.view(model)
    model.reseed(seed)
    t0 = time.perf_counter()
    result = attack(view, x, y, threat, idx, seed)
    return time.perf_counter() - t0, result.success.cpu()


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar test: b and c images broken by one side only."""
    return float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0


def interval(k: int, n: int) -> list[float]:
    low, high = proportion_confint(k, n, alpha=0.05, method="beta")
    return [float(low), float(high)]


def measure(name: str, n: int, eps: float, floor_autoattack: bool, started_at: str) -> dict:
    model, _ = load_model(name, "fashion-mnist")
    data = load_dataset("fashion-mnist", "test")
    x, y = data.images[:n], data.labels[:n]
    threat = parse_threat(f"linf:{eps}")
    model.reseed(0)
    judge = AttackedModel(model)
    assert judge.vote_rule is not None, f"{name} is not random at inference"
    clean = judge.judge(x, y)
    keep = (~clean.wrong).nonzero().view(-1)
    xs, ys, idx = x[keep], y[keep], keep
    timed: dict[str, float] = {}
    broken: dict[str, torch.Tensor] = {}
    for label, spec in [("auto", "auto"), ("autoattack", "autoattack:version=rand")][:: 1 if n % 2 == 0 else -1]:
        timed[label], broken[label] = side(spec, model, xs, ys, idx, threat, 0)
        print(f"  {name}: {label} {timed[label]:.0f} s, broke {int(broken[label].sum())} of {len(keep)}", flush=True)
    seconds_again = {}
    seconds_again["auto"], again = side("auto", model, xs, ys, idx, threat, 1)
    floor = {"auto": float((again != broken["auto"]).float().mean())}
    if floor_autoattack:
        seconds_again["autoattack"], aa_again = side("autoattack:version=rand", model, xs, ys, idx, threat, 1)
        floor["autoattack"] = float((aa_again != broken["autoattack"]).float().mean())
    robust = {k: len(keep) - int(v.sum()) for k, v in broken.items()}
    aa_breaks = int(broken["autoattack"].sum())
    both = int((broken["autoattack"] & broken["auto"]).sum())
    return {
        "model": name,
        "n": n,
        "eps": eps,
        "clean": len(keep) / n,
        "auto_seconds": timed["auto"],
        "autoattack_seconds": timed["autoattack"],
        "speed_up": timed["autoattack"] / timed["auto"],
        "auto_robust": robust["auto"] / n,
        "autoattack_robust": robust["autoattack"] / n,
        "auto_robust_ci": interval(robust["auto"], n),
        "autoattack_robust_ci": interval(robust["autoattack"], n),
        "caught": both / aa_breaks if aa_breaks else 1.0,
        "agreement": float((broken["auto"] == broken["autoattack"]).float().mean()),
        # The two sides on the same images: exact McNemar test on the images only one side broke.
        "only_auto": int((broken["auto"] & ~broken["autoattack"]).sum()),
        "only_autoattack": int((broken["autoattack"] & ~broken["auto"]).sum()),
        "mcnemar_p": mcnemar_p(int((broken["auto"] & ~broken["autoattack"]).sum()), int((broken["autoattack"] & ~broken["auto"]).sum())),
        "noise_floor": floor,
        # The noise-floor runs (seed 1) timed too: a second measurement of each side's seconds.
        "seconds_again": seconds_again,
        "vote": judge.vote.label(),
        "commit": started_at,  # the state the code was imported from
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cpni-w-smooth-soft", "pni-w", "sc-frontend", "cpni-a"])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--floor-autoattack", action="store_true")
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "runs" / "random-vs-autoattack.json")
    args = parser.parse_args()
    started_at = commit()
    rows = json.loads(args.json.read_text()) if args.json.exists() else []
    print(f"{'model':<20} {'n':>4} {'auto s':>8} {'AA s':>8} {'speed-up':>8} {'auto rob':>8} {'AA rob':>7} {'caught':>6} {'agree':>6} floor")
    for name in args.models:
        row = measure(name, args.n, args.eps, args.floor_autoattack, started_at)
        rows = [r for r in rows if (r["model"], r["n"], r["eps"]) != (name, args.n, args.eps)] + [row]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
        print(f"{name:<20} {args.n:>4} {row['auto_seconds']:>8.0f} {row['autoattack_seconds']:>8.0f} {row['speed_up']:>8.1f} "
              f"{100 * row['auto_robust']:>7.1f}% {100 * row['autoattack_robust']:>6.1f}% {100 * row['caught']:>5.0f}% "
              f"{100 * row['agreement']:>5.0f}% {row['noise_floor']}", flush=True)


if __name__ == "__main__":
    main()
