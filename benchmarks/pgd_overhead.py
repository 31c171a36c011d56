"""PGD-20 on the shipped kap-rn18 checkpoint vs a bare loop of 20 forward+backward passes.

Both run on the same batch, in the same process, through the same wrapper; each is timed
`--repeats` times after a warm-up and the median is reported. Prints the ratio (target <= 1.15).
Run: python benchmarks/pgd_overhead.py [--batch-size 256] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from advbench.attacks import build_attack
from advbench.core.device import resolve_device
from advbench.core.threat import Norm, ThreatModel
from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models.card import load_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(model, x, y, steps: int) -> None:
    for _ in range(steps):
        xg = x.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg)


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="kap-rn18")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = resolve_device(args.device)
    model, card = load_model(args.model, "fashion-mnist")
    model.to(device)
    idx = select_indices(dataset_labels("fashion-mnist"), args.batch_size, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    x, y, idx = data.images.to(device), data.labels.to(device), idx.to(device)
    threat = ThreatModel(Norm.LINF, args.eps)
    pgd = build_attack("pgd:steps=20")[1]
    pgd_no_es = build_attack("pgd:steps=20,early_stop=false")[1]

    bare = timed(lambda: bare_loop(model, x, y, 20), device, args.repeats)
    full = timed(lambda: pgd_no_es(model, x, y, threat, idx), device, args.repeats)
    early = timed(lambda: pgd(model, x, y, threat, idx), device, args.repeats)
    robust = 1 - pgd(model, x, y, threat, idx).success.float().mean().item()
    report = {
        "model": args.model,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "eps_linf": args.eps,
        "robust_accuracy_pgd20": round(robust, 4),
        "bare_20_fwd_bwd_s": round(bare, 3),
        "pgd20_no_early_stop_s": round(full, 3),
        "pgd20_s": round(early, 3),
        "ratio_no_early_stop": round(full / bare, 3),
        "ratio_default": round(early / bare, 3),
        "target_ratio": 1.15,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
