"""Certification throughput vs bare forward passes, and adaptive vs fixed-n sample counts.

1. CERTIFY's noisy forward passes per second against the model's bare no-grad forward
   throughput on batches of the same size in the same run (target ratio >= 0.90).
2. On the same images: forward passes used by --adaptive at one radius vs the fixed-n
   procedure, and the certified accuracy of both at that radius (target >= 5x fewer).
Run: python benchmarks/certify_throughput.py [--model rn18-nt] [--batch-size 1000] [--n 40] [--noise-draws 10000]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from advbench.certification.cohen import (
    CertifyConfig,
    certify_sample,
    certify_sample_adaptive,
)
from advbench.core.device import resolve_device
from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models.card import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rn18-nt")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--n", type=int, default=40, help="test images")
    parser.add_argument("--noise-draws", type=int, default=10_000, help="noise draws that bound the top class's probability")
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--radius", type=float, default=0.25)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    model, _ = load_model(args.model, "fashion-mnist")
    model.to(device)
    idx = select_indices(dataset_labels("fashion-mnist"), args.n, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    x, y = data.images.to(device), data.labels.tolist()
    config = CertifyConfig(sigma=args.sigma, n0=100, n=args.noise_draws, batch_size=args.batch_size)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # Bare forward throughput on batches of noisy copies (noise made once, outside the timing).
    batch = (x[0].unsqueeze(0) + args.sigma * torch.randn(args.batch_size, *x.shape[1:], device=device))
    with torch.no_grad():
        model(batch)
        rounds = max(1, (config.n0 + config.n) // args.batch_size)
        sync()
        t0 = time.perf_counter()
        for _ in range(rounds):
            model(batch).argmax(1)
        sync()
    bare = rounds * args.batch_size / (time.perf_counter() - t0)

    fixed, passes_fixed, t0 = [], 0, time.perf_counter()
    for i in range(len(y)):
        fixed.append(certify_sample(model, x[i], y[i], int(idx[i]), config))
        passes_fixed += config.n0 + config.n
    sync()
    certify_rate = passes_fixed / (time.perf_counter() - t0)

    adaptive, passes_adaptive = [], 0
    for i in range(len(y)):
        cert, passes = certify_sample_adaptive(model, x[i], y[i], int(idx[i]), config, args.radius)
        adaptive.append(cert)
        passes_adaptive += passes

    def accuracy(certs) -> float:  # noqa: ANN001
        return sum(c.prediction == c.label and c.radius >= args.radius for c in certs) / len(certs)

    print(json.dumps({
        "model": args.model, "device": str(device), "torch_threads": torch.get_num_threads(), "batch_size": args.batch_size,
        "n0": config.n0, "noise_draws": config.n, "sigma": args.sigma, "n": len(y),
        "bare_forward_per_s": round(bare, 1), "certify_forward_per_s": round(certify_rate, 1),
        "throughput_ratio": round(certify_rate / bare, 3), "target_ratio": 0.9,
        "radius": args.radius, "certified_accuracy_fixed": accuracy(fixed), "certified_accuracy_adaptive": accuracy(adaptive),
        "forward_passes_fixed": passes_fixed, "forward_passes_adaptive": passes_adaptive,
        "passes_saved_factor": round(passes_fixed / passes_adaptive, 2), "target_factor": 5,
    }, indent=2))


if __name__ == "__main__":
    main()
