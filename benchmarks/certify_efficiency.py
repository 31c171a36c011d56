"""Fixed-N CERTIFY (Cohen et al., N = 100,000) vs sequential certification: forward passes, seconds, certified accuracy.

For each model and sigma, the same images are certified twice: by CERTIFY with a fixed number of
estimation draws, and by the sequential procedure (advbench.certification.sequential) deciding
the listed radii with at most as many draws. Both use n0 = 100 selection draws and alpha = 0.001.
Writes one JSON document (per cell: passes, seconds, certified accuracy at each radius, the
sequential draws per image) and rewrites it after every cell, so a partial run keeps its cells.
Fixed-N certificates are slow (N forward passes per image) and do not depend on the sequential
method's settings, so each is also kept in `--fixed-cache` (keyed by model, checkpoint sha256, sigma,
image, N, the noise stream and the device class: a GPU run is never timed or compared against
stored CPU certificates, nor counter-based noise against the torch.Generator noise of entries
written before it, whose keys ended in the batch size) and read back from there by later runs.
Run: python benchmarks/certify_efficiency.py --n 3 --json docs/runs/certify-efficiency.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from advbench.certification.cohen import Certificate, CertifyConfig, certify_sample
from advbench.certification.sequential import SequentialConfig, certify_sequential
from advbench.core.device import device_class, resolve_device, synchronize
from advbench.core.provenance import git_commit
from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models.card import load_model
from advbench.store import REPORTED_RADII

RADII = REPORTED_RADII


def certified_accuracy(certs: list[Certificate], r: float) -> float:
    return sum(c.prediction == c.label and c.radius >= r for c in certs) / len(certs)


def fixed_key(name: str, sha256: str, sigma: float, index: int, noise_draws: int, device: torch.device) -> str:
    """A fixed-N certificate's cache key. The checkpoint's hash: a re-saved or retrained checkpoint
    never reuses another's certificates. The noise stream and the device class: they change the
    counts (the batch size no longer does)."""
    return f"{name}/{sha256[:16]}/{sigma:g}/{index}/{noise_draws}/noise=counter/{device_class(device)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["rn18-nt-noise", "kap-rn18"])
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.25, 0.5])
    parser.add_argument("--n", type=int, default=10, help="test images per cell")
    parser.add_argument("--noise-draws", type=int, default=100_000, help="fixed N, and the sequential method's cap")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--resolution", type=float, default=0.01, help="the sequential method's --resolution")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=Path("docs/runs/certify-efficiency.json"))
    parser.add_argument("--fixed-cache", type=Path, default=Path("docs/runs/certify-efficiency-fixed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    idx = select_indices(dataset_labels("fashion-mnist"), args.n, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    x, labels, indices = data.images.to(device), data.labels.tolist(), idx.tolist()
    report: dict[str, object] = {
        "commit": git_commit(), "device": str(device), "torch_threads": torch.get_num_threads(), "n": len(labels), "n0": 100, "alpha": 0.001,
        "noise_draws": args.noise_draws, "batch_size": args.batch_size, "radii": list(RADII), "resolution": args.resolution, "cells": [],
    }
    args.fixed_cache.parent.mkdir(parents=True, exist_ok=True)
    cache = json.loads(args.fixed_cache.read_text()) if args.fixed_cache.exists() else {}
    for name in args.models:
        model, card = load_model(name, "fashion-mnist")
        model.to(device)
        for sigma in args.sigmas:
            seq_config = SequentialConfig(sigma=sigma, n0=100, max_draws=args.noise_draws, alpha=0.001, radii=RADII, resolution=args.resolution,
                                          batch_size=args.batch_size)
            t0 = time.perf_counter()
            sequential = certify_sequential(model, x, labels, indices, seq_config)
            synchronize(device)
            seq_seconds = time.perf_counter() - t0
            fixed_config = CertifyConfig(sigma=sigma, n0=100, n=args.noise_draws, alpha=0.001, batch_size=args.batch_size)
            fixed, fixed_seconds = [], 0.0
            for i in range(len(labels)):
                key = fixed_key(name, card.sha256, sigma, indices[i], args.noise_draws, device)
                if key not in cache:
                    t0 = time.perf_counter()
                    cert = certify_sample(model, x[i], labels[i], indices[i], fixed_config)
                    synchronize(device)
                    cache[key] = {**asdict(cert), "seconds": time.perf_counter() - t0}
                    args.fixed_cache.write_text(json.dumps(cache, indent=1))
                fixed.append(Certificate(**{k: v for k, v in cache[key].items() if k != "seconds"}))
                fixed_seconds += cache[key]["seconds"]
            seq_certs = [c for c, _ in sequential]
            fixed_passes = len(labels) * (100 + args.noise_draws)
            seq_passes = sum(p for _, p in sequential)
            cell = {
                "model": name, "checkpoint_sha256": card.sha256, "sigma": sigma,
                "fixed": {"forward_passes": fixed_passes, "seconds": round(fixed_seconds, 1),
                          "certified_accuracy": [certified_accuracy(fixed, r) for r in RADII], "radius": [round(c.radius, 4) for c in fixed]},
                "sequential": {"forward_passes": seq_passes, "seconds": round(seq_seconds, 1),
                               "certified_accuracy": [certified_accuracy(seq_certs, r) for r in RADII], "radius": [round(c.radius, 4) for c in seq_certs],
                               "draws_per_image": [p for _, p in sequential]},
                "passes_saved_factor": round(fixed_passes / seq_passes, 1),
                "max_gap_images": max(abs(certified_accuracy(fixed, r) - certified_accuracy(seq_certs, r)) * len(labels) for r in RADII),
            }
            report["cells"].append(cell)  # type: ignore[union-attr]
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2))
            print(json.dumps({k: cell[k] for k in ("model", "sigma", "passes_saved_factor", "max_gap_images")}), flush=True)


if __name__ == "__main__":
    main()
