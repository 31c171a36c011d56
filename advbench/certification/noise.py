"""Randomized smoothing's noise: copy d of image i at sigma s depends on (seed, i, s, d) only.

Each noisy copy's Gaussian noise comes from the counter-based hash the attacks' random starts use
(`core.seeding.normal_rows`), keyed by the image's key (the run's seed, the image's dataset index,
sigma) and the copy's draw index: draws 0 .. n0-1 pick the top class, n0 .. n0+n-1 bound its
probability, and a sequential run's later looks go on counting from where the last one stopped.
So the noise, and with it every count and radius, never depends on how the draws are cut into
forward passes (the batch size, the free memory of a GPU), on which images share a pass, on the
worker, or on a resume.

Bit for bit on one device class: the hash is integer arithmetic, but the Box-Muller step's
log, sqrt, cos and sin may round differently on CUDA than on the CPU, so a certificate computed on a
GPU can differ from the CPU's in a vote near a decision boundary. The run key records the device
class (`engine.run_key`), and runs never resume across it. The key names this stream
noise="counter"; runs stored before it drew from one torch.Generator per image in chunks of the
batch size (noise="torch-generator"), so they are never resumed with it.
"""

from __future__ import annotations

import torch

from advbench.core.seeding import derive_seed, normal_rows

MAX_DRAWS = 1 << 32  # draw indices live in the low 32 bits of a copy's key


def image_key(seed: int, index: int, sigma: float) -> int:
    """The 31-bit key of one image's noise at one sigma (its dataset index, not its batch position)."""
    return derive_seed(seed, "certify", index, sigma)


def noise(keys: torch.Tensor, draws: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise (float32, len(keys) x shape) for copy `draws[j]` of the image keyed
    `keys[j]`, on the keys' device; row j is a function of (keys[j], draws[j]) only."""
    return normal_rows((keys.to(torch.int64) << 32) | draws.to(torch.int64), shape)
