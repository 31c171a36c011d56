"""`auto` (advbench's default evaluation) against AutoAttack standard (`pyautoattack`), side by side.

Per panel model, on the same images, in one process: robust accuracy of each, per sample the
share of the images AutoAttack breaks that `auto` breaks too, wall time and its ratio, and each
attack's time in units of one bare forward+backward pass over the batch (the floor: an attack
cannot cost less than the gradient steps it takes). The two attacks alternate in order from model
to model so that drifts in machine load hit both alike.

    python benchmarks/auto_vs_autoattack.py --n 500 --json results/auto_vs_aa.json
    python benchmarks/auto_vs_autoattack.py --models madry-cnn-at --n 100     # one model, quick
    python benchmarks/auto_vs_autoattack.py --models cpni-w-smooth-soft --skip 50 --n-slow 150   # images 51-200

Both attacks run through advbench's attack contract (`attack(view, x, y, threat)`): the model as
attacked (BPDA surrogates, EOT on models random at inference, AutoAttack `rand` there) is the
same for both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from timing import sync

from advbench.attacks import build_attack
from advbench.core.device import resolve_device
from advbench.core.threat import ThreatModel
from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models.card import load_model

REPO = Path(__file__).resolve().parents[1]
CIFAR = REPO.parent / "shared" / "datasets" / "cifar10-test-jpg"
# (name, model, dataset, norm, eps): each card's threat model.
PANEL = [
    ("madry-cnn-at", "madry-cnn-at", "fashion-mnist", "linf", 0.1),
    ("rn18-at", "rn18-at", "fashion-mnist", "linf", 0.1),
    ("rn18-trades", "rn18-trades", "fashion-mnist", "linf", 0.1),
    ("pfe-madry (BPDA)", "pfe-madry", "fashion-mnist", "linf", 0.1),
    ("kap-rn18 L2", "kap-rn18", "fashion-mnist", "l2", 0.5),
    ("cpni-w-smooth-soft (random)", "cpni-w-smooth-soft", "fashion-mnist", "linf", 0.1),
    ("cifar10 resnet18 (external)", "external", f"imagefolder:{CIFAR}", "linf", 1 / 255),
]


def external_model() -> tuple[str, str]:
    import pyautoattack

    examples = Path(pyautoattack.__file__).parent / "examples"
    return f"file:{examples / 'resnet.py'}:ResNet18", str(examples / "model_test.pt")


def floor_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    """One bare forward+backward pass over the batch (median of 3)."""
    times = []
    for _ in range(3):
        sync(device)
        t0 = time.perf_counter()
        xg = x.detach().requires_grad_(True)
        with model.attack_mode():  # through BPDA surrogates, as the attacks differentiate
            loss = F.cross_entropy(model(xg), y, reduction="sum")
        torch.autograd.grad(loss, xg)
        sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[1]


def run(attack_spec: str, model, x, y, idx, threat, device) -> tuple[torch.Tensor, float]:
    attack = build_attack(attack_spec)[1]
    sync(device)
    t0 = time.perf_counter()
    success = attack(model, x, y, threat, idx, seed=0).success
    sync(device)
    return success, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="images per Fashion-MNIST model")
    parser.add_argument("--n-slow", type=int, default=200, help="images for the ResNets, the random model and CIFAR-10")
    parser.add_argument("--models", default="", help="comma-separated panel names or model names (default: the whole panel)")
    parser.add_argument("--ours", default="auto", help="advbench's attack spec")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first SKIP images of the seeded order (extends a stored run to more images: "
                        "--skip 50 --n-slow 150 measures images 51-200 of the order)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.skip < 0:
        parser.error("--skip must be >= 0")
    device = resolve_device(args.device)
    wanted = {w.strip() for w in args.models.split(",") if w.strip()}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    report = {"commit": commit, "ours": args.ours, "device": str(device), "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg(), "rows": []}
    print(f"{'model':32} {'threat':11} {'n':>4} {'clean':>6} {'auto':>6} {'AA':>6} {'caught':>7} {'auto s':>8} {'AA s':>8} {'speed-up':>8} {'auto/fb':>8} {'AA/fb':>8}")
    for i, (label, name, dataset, norm, eps) in enumerate(PANEL):
        if wanted and label not in wanted and name not in wanted:
            continue
        if name == "external":
            if not CIFAR.is_dir():
                print(f"{label}: skipped, {CIFAR} is absent")
                continue
            name, weights = external_model()
        else:
            weights = None
        model, _ = load_model(name, dataset, weights=weights)
        model.to(device)
        slow = "rn18" in name or "kap" in name or model.stochastic or dataset.startswith("imagefolder")
        n = args.n_slow if slow else args.n
        labels = dataset_labels(dataset)
        idx = select_indices(labels, args.skip + n, seed=0)
        if args.skip:  # the seeded order's first skip + n images minus its first skip: images skip+1 .. skip+n
            idx = idx[~torch.isin(idx, select_indices(labels, args.skip, seed=0))]
        data = load_dataset(dataset, "test", indices=idx)
        x, y, idx = data.images.to(device), data.labels.to(device), idx.to(device)
        threat = ThreatModel(norm, eps)
        correct = model.predict(x) == y
        order = [args.ours, "autoattack"] if i % 2 == 0 else ["autoattack", args.ours]
        results = {spec: run(spec, model, x, y, idx, threat, device) for spec in order}
        (ours, t_ours), (theirs, t_theirs) = results[args.ours], results["autoattack"]
        fb = floor_seconds(model, x, y, device)
        robust_ours = float((correct & ~ours).float().mean())
        robust_aa = float((correct & ~theirs).float().mean())
        aa_broken = correct & theirs
        caught = float((aa_broken & ours).sum() / aa_broken.sum()) if bool(aa_broken.any()) else 1.0
        row = {
            "model": label, "threat": threat.label(), "n": n, "skip": args.skip, "clean": float(correct.float().mean()), "robust_auto": robust_ours, "robust_autoattack": robust_aa,
            "share_of_aa_breaks_caught": caught, "seconds_auto": t_ours, "seconds_autoattack": t_theirs, "speed_up": t_theirs / t_ours,
            "auto_in_forward_backward_passes": t_ours / fb, "autoattack_in_forward_backward_passes": t_theirs / fb,
            "order": order, "load_average_after": os.getloadavg(),
            # Dataset indices, to look into a miss: which images each attack broke and the other did not.
            "autoattack_broke_auto_missed": idx[aa_broken & ~ours].tolist(), "auto_broke_autoattack_missed": idx[correct & ours & ~theirs].tolist(),
            # Every image's outcome, so a variant of `auto` can later be compared on these images without re-running AutoAttack.
            "clean_correct": idx[correct].tolist(), "autoattack_broke": idx[aa_broken].tolist(), "auto_broke": idx[correct & ours].tolist(),
        }
        report["rows"].append(row)
        print(f"{label:32} {threat.label():11} {n:4d} {100 * row['clean']:6.1f} {100 * robust_ours:6.1f} {100 * robust_aa:6.1f} {100 * caught:6.1f}% "
              f"{t_ours:8.1f} {t_theirs:8.1f} {row['speed_up']:7.1f}x {row['auto_in_forward_backward_passes']:8.0f} {row['autoattack_in_forward_backward_passes']:8.0f}", flush=True)
        if args.json:  # after every model: a long panel keeps what it measured
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
