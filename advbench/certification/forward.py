"""How certification's noisy forward passes run: the votes of an image's noisy copies, their
precision (autocast) and the batch size chosen for the device."""

from __future__ import annotations

import contextlib

import torch

from advbench.certification.noise import MAX_DRAWS, noise
from advbench.core.errors import UsageError
from advbench.models.wrapper import RobustModel

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_NOISE_BATCH = 1000  # noisy copies per forward pass on the CPU (larger gains nothing there)
MAX_NOISE_BATCH = (
    20_000  # cap on the device: past it the argmax and bincount stop being the cheap part
)
PROBE = 256  # noisy copies of the probe that measures memory per copy


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def check_precision_on(device: torch.device, precision: str) -> None:
    """Refuse a precision the device's autocast lacks, before any run is opened."""
    check_precision(precision)
    if device.type == "cpu" and precision == "fp16":
        raise UsageError("--precision fp16 needs a CUDA device; on the CPU use bf16")


def precision_context(
    device: torch.device, precision: str
) -> contextlib.AbstractContextManager[None]:
    """Autocast for bf16/fp16 forward passes. Only the argmax leaves it: certificates are computed
    from class counts, never from low-precision probabilities."""
    check_precision_on(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def count_votes(
    model: RobustModel,
    images: torch.Tensor,
    keys: torch.Tensor,
    starts: torch.Tensor,
    draws: int,
    sigma: float,
    batch_size: int,
    precision: str = "fp32",
) -> torch.Tensor:
    """Class counts (images x classes) of the base classifier over copies starts[i] .. starts[i] +
    draws - 1 of each image (N, C, H, W) keyed keys[i] (`noise.image_key`), in forward passes of
    up to `batch_size` copies.

    The passes are cut from the images' copies laid end to end, so a pass may hold the last copies
    of one image and the first of the next; no copy's noise depends on the cut (`noise.noise`)."""
    num, classes, dev = len(images), model.num_classes, images.device
    counts = torch.zeros(num * classes, dtype=torch.int64, device=dev)
    if draws <= 0 or num == 0:
        return counts.view(num, classes)
    if int(starts.max()) + draws > MAX_DRAWS:
        raise UsageError(f"at most {MAX_DRAWS} noise draws per image")
    keys, starts = keys.to(dev, torch.int64), starts.to(dev, torch.int64)
    shape, total = tuple(images.shape[1:]), num * draws
    with torch.no_grad(), precision_context(dev, precision):
        for first in range(0, total, batch_size):
            flat = torch.arange(first, min(total, first + batch_size), device=dev)
            owner = torch.div(flat, draws, rounding_mode="floor")
            eps = noise(keys[owner], starts[owner] + flat - owner * draws, shape)
            pred = model(images[owner] + sigma * eps.to(images.dtype)).argmax(1)
            counts += torch.bincount(owner * classes + pred, minlength=num * classes)
    return counts.view(num, classes)


def auto_noise_batch(
    model: RobustModel,
    image_shape: tuple[int, ...],
    device: torch.device,
    precision: str = "fp32",
    cap: int = MAX_NOISE_BATCH,
) -> int:
    """Noisy copies per forward pass: on CUDA as many as half the free memory holds (measured with
    a probe pass of `count_votes`, the noise's buffers included), at most `cap`; elsewhere
    CPU_NOISE_BATCH. The certificates do not depend on it (`noise`)."""
    if device.type != "cuda":
        return min(cap, CPU_NOISE_BATCH)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    on = model.device  # `device`, where the model was put
    zero = torch.zeros(1, dtype=torch.int64, device=on)
    image = torch.rand((1, *image_shape), device=on)
    count_votes(model, image, zero, zero, PROBE, 0.0, PROBE, precision)
    per_copy = max(1, (torch.cuda.max_memory_allocated(device) - before) // PROBE)
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(PROBE, min(cap, free // 2 // per_copy)))
