"""PGD-20 on the shipped kap-rn18 checkpoint vs a bare loop of 20 forward+backward passes.

Both run on the same batch, in the same process, through the same wrapper; each is timed
`--repeats` rounds after a warm-up, rounds interleaved; the median per-round ratio is reported. Prints the ratio (target <= 1.15).
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


def time_once(fn, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(fns: dict, device: torch.device, repeats: int) -> dict[str, list[float]]:
    """Time each function once per round, rounds interleaved, so drifts in machine load hit all alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(time_once(fn, device))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="kap-rn18")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--eps", type=float, default=0.1, help="Linf budget (0.1: the zoo's setting; 0.01 leaves most samples unbroken)")
    parser.add_argument("--repeats", type=int, default=5)
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

    times = interleaved(
        {
            "bare": lambda: bare_loop(model, x, y, 20),
            "pgd_no_es": lambda: pgd_no_es(model, x, y, threat, idx),
            "pgd": lambda: pgd(model, x, y, threat, idx),
        },
        device,
        args.repeats,
    )
    bare, full, early = (statistics.median(times[k]) for k in ("bare", "pgd_no_es", "pgd"))
    # Ratio per round, then the median: each round's three timings share the machine's state.
    ratio_full = statistics.median(f / b for f, b in zip(times["pgd_no_es"], times["bare"]))
    ratio_early = statistics.median(e / b for e, b in zip(times["pgd"], times["bare"]))
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
        "ratio_no_early_stop": round(ratio_full, 3),
        "ratio_default": round(ratio_early, 3),
        "repeats": args.repeats,
        "target_ratio": 1.15,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
