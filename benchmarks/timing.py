"""What the benchmark scripts share: device sync, interleaved timing rounds, a Fashion-MNIST batch."""

from __future__ import annotations

import time
from typing import Callable

import torch

from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_once(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict[str, list[float]]:
    """Time each function once per round after a warm-up, rounds interleaved, so drifts in
    machine load hit all of them alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(time_once(fn, device))
    return times


def fashion_batch(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`size` seeded (seed 0) Fashion-MNIST test images, labels and dataset indices on `device`."""
    idx = select_indices(dataset_labels("fashion-mnist"), size, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    return data.images.to(device), data.labels.to(device), idx.to(device)
