"""advbench's `autoattack` vs calling pyautoattack directly, on the shipped rn18-nt checkpoint.

Both run on the same batch, in the same process, with the same model, eps, version and seed;
each is timed `--repeats` rounds after a warm-up, rounds interleaved; the median per-round ratio
is reported (target <= 1.05), with both robust accuracies and how far the x_adv tensors differ
(advbench projects AutoAttack's output into the eps-ball, which can move it by float rounding).
At Linf 0.1 APGD-CE breaks most samples, so the run is mostly APGD-CE's 100 steps.
Run: python benchmarks/autoattack_overhead.py [--batch-size 64] [--eps 0.1] [--version standard]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from pyautoattack import AutoAttack
from timing import fashion_batch, interleaved  # noqa: E402 (benchmarks/timing.py, beside this script)

from advbench.attacks import build_attack
from advbench.core.device import resolve_device
from advbench.core.threat import Norm, ThreatModel
from advbench.models.card import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rn18-nt")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eps", type=float, default=0.1, help="Linf budget")
    parser.add_argument("--version", default="standard", choices=["standard", "plus", "rand"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = resolve_device(args.device)
    model, _ = load_model(args.model, "fashion-mnist")
    model.to(device)
    x, y, idx = fashion_batch(args.batch_size, device)
    threat = ThreatModel(Norm.LINF, args.eps)
    attack = build_attack(f"autoattack:version={args.version}")[1]
    out: dict[str, object] = {}

    def direct() -> None:
        aa = AutoAttack(model, norm="Linf", eps=args.eps, version=args.version, device=device, seed=args.seed)
        out["direct"] = aa.run_standard_evaluation(x, y, batch_size=len(x))

    def ours() -> None:
        out["advbench"] = attack(model, x, y, threat, idx, args.seed)

    times = interleaved({"direct": direct, "advbench": ours}, device, args.repeats)
    ratio = statistics.median(a / d for a, d in zip(times["advbench"], times["direct"]))
    x_direct, y_direct = out["direct"]
    result = out["advbench"]
    report = {
        "model": args.model,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "eps_linf": args.eps,
        "version": args.version,
        "seed": args.seed,
        "robust_accuracy_direct": (y_direct == y).float().mean().item(),
        "robust_accuracy_advbench": 1 - result.success.float().mean().item(),
        "same_per_sample_success": bool(torch.equal(result.success, y_direct != y)),
        "x_adv_equal_after_projection": bool(torch.equal(result.x_adv, threat.project(x, x_direct))),
        "x_adv_max_abs_diff": (result.x_adv - x_direct).abs().max().item(),
        "direct_s": round(statistics.median(times["direct"]), 3),
        "advbench_s": round(statistics.median(times["advbench"]), 3),
        "ratio": round(ratio, 3),
        "repeats": args.repeats,
        "target_ratio": 1.05,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
