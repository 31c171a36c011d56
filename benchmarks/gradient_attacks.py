"""Gradient attacks vs a bare forward+backward loop, and vs foolbox's implementations.

For FGSM, PGD-20 and EOT-PGD (4 draws per gradient): the attack's time over the time of the
same number of bare forward+backward passes (input gradients) on the same batch through the
same wrapper (target <= 1.15 without early stopping), and over foolbox's implementation of
the same attack on the same batch (target < 1, thanks to early stopping), with both robust
accuracies. Timings are interleaved rounds after a warm-up; medians of per-round ratios.
Run: python benchmarks/gradient_attacks.py [--model kap-rn18] [--batch-size 256] [--eps 0.1] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from timing import fashion_batch, interleaved  # noqa: E402 (benchmarks/timing.py, beside this script)

from advbench.attacks import build_attack
from advbench.core.device import resolve_device
from advbench.core.threat import Norm, ThreatModel
from advbench.models.card import load_model


def bare_loop(model, x, y, steps: int) -> None:
    for _ in range(steps):
        xg = x.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg)




def foolbox_attack(name: str, model, x, y, eps: float):
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
    attack = {
        "fgsm": fb.attacks.FGSM(),
        "pgd": fb.attacks.LinfPGD(steps=20, rel_stepsize=0.125, random_start=True),
    }[name]

    def run() -> float:
        _, _, success = attack(fmodel, x, y, epsilons=eps)
        return 1 - success.float().mean().item()

    return run


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
    x, y, idx = fashion_batch(args.batch_size, device)
    threat = ThreatModel(Norm.LINF, args.eps)

    def attack(spec: str, eot: int = 1):
        a = build_attack(spec)[1]
        return a, a.view(model, eot_draws=eot)

    ours = {
        "fgsm": attack("fgsm"),
        "pgd": attack("pgd:steps=20"),
        "pgd_no_es": attack("pgd:steps=20,early_stop=false"),
        "eot4_pgd_no_es": attack("eot-pgd:steps=20,early_stop=false", eot=4),
    }
    fb_runs = {name: foolbox_attack(name, model, x, y, args.eps) for name in ("fgsm", "pgd")}
    times = interleaved(
        {
            "bare_1": lambda: bare_loop(model, x, y, 1),
            "bare_20": lambda: bare_loop(model, x, y, 20),
            "bare_80": lambda: bare_loop(model, x, y, 80),
            **{name: (lambda a=a, v=v: a(v, x, y, threat, idx)) for name, (a, v) in ours.items()},
            **{f"foolbox_{name}": run for name, run in fb_runs.items()},
        },
        device,
        args.repeats,
    )

    def ratio(a: str, b: str) -> float:
        # Ratio per round, then the median: each round's timings share the machine's state.
        return round(statistics.median(t / u for t, u in zip(times[a], times[b])), 3)

    robust = {name: round(1 - a(v, x, y, threat, idx).success.float().mean().item(), 4) for name, (a, v) in ours.items()}
    robust.update({f"foolbox_{name}": round(run(), 4) for name, run in fb_runs.items()})
    report = {
        "model": args.model,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "eps_linf": args.eps,
        "median_seconds": {k: round(statistics.median(v), 3) for k, v in times.items()},
        "vs_bare": {
            "fgsm / 1 fwd+bwd": ratio("fgsm", "bare_1"),
            "pgd20 without early stop / 20 fwd+bwd": ratio("pgd_no_es", "bare_20"),
            "pgd20 default / 20 fwd+bwd": ratio("pgd", "bare_20"),
            "eot4-pgd20 without early stop / 80 fwd+bwd": ratio("eot4_pgd_no_es", "bare_80"),
        },
        "vs_foolbox": {"fgsm": ratio("fgsm", "foolbox_fgsm"), "pgd20": ratio("pgd", "foolbox_pgd")},
        "robust_accuracy": robust,
        "repeats": args.repeats,
        "target_vs_bare": 1.15,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
