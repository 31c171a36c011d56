"""How certification's noisy forward passes run: precision (autocast) and the batch size chosen for the device."""

from __future__ import annotations

import contextlib

import torch

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


def auto_noise_batch(
    model: RobustModel,
    image_shape: tuple[int, ...],
    device: torch.device,
    precision: str = "fp32",
    cap: int = MAX_NOISE_BATCH,
) -> int:
    """Noisy copies per forward pass: on CUDA as many as half the free memory holds (measured with
    a probe forward), at most `cap`; elsewhere CPU_NOISE_BATCH."""
    if device.type != "cuda":
        return min(cap, CPU_NOISE_BATCH)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with torch.no_grad(), precision_context(device, precision):
        model(torch.rand((PROBE, *image_shape), device=device)).argmax(1)
    per_copy = max(1, (torch.cuda.max_memory_allocated(device) - before) // PROBE)
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(PROBE, min(cap, free // 2 // per_copy)))
