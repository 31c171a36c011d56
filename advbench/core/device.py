"""Device choice (`auto` picks CUDA when present), and the determinism policy on CUDA.

The policy (docs/gpu.md), applied in one place: every unit of work whose results are stored runs
inside `deterministic(device, tf32)` (the executors wrap each job in it). On CUDA that turns TF32
off for matmuls and cuDNN convolutions unless the run allows it (`--tf32`, recorded in its key),
asks cuDNN for deterministic algorithms and no benchmarking, and makes PyTorch use deterministic
algorithms where it has them (`torch.use_deterministic_algorithms(True, warn_only=True)`). The
ops that have none (`NONDETERMINISTIC_OPS`) still run, without the warning: their backward passes
add with atomics, so a gradient, and an attack's path through it, may differ from run to run in
the last bits. On the CPU nothing changes: its kernels are deterministic already.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Iterator

import torch

from advbench.core.errors import UsageError

# CUDA ops advbench's models reach that lack a deterministic implementation (PyTorch 2.x's
# `torch.use_deterministic_algorithms` list): all are backward passes, so they touch attacks'
# gradients only, never a forward pass, a judgement or a certificate.
NONDETERMINISTIC_OPS = (
    "adaptive_avg_pool2d_backward_cuda (nn.AdaptiveAvgPool2d: ResNet, AlexNet, HaH and CNN heads)",
    "avg_pool3d_backward_cuda (kernel average pooling over channels, models/kernel_pooling)",
    "upsample_bilinear2d_backward_out_cuda (bilinear input upsampling, models/upsample)",
)
CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS's setting for reproducible matmuls (read when it starts)


def resolve_device(name: str = "auto") -> torch.device:
    """`auto`, `cpu`, `cuda` or `cuda:N` as a torch device; a UsageError (exit 2) for a device this
    machine lacks, naming what it has."""
    name = name.lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {name!r} requested but CUDA is not available here")
        device = torch.device(name)
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UsageError(
                f"device {name!r} requested but this machine has {count} CUDA device{'s' if count != 1 else ''} "
                f"(cuda:0 to cuda:{count - 1})"
            )
        # Before cuBLAS starts on this process: reproducible matmuls (see `deterministic`).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        return device
    if name == "cpu":
        return torch.device("cpu")
    raise UsageError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")


def device_class(device: torch.device) -> str:
    """What of a device can change a result: its type ('cpu' or 'cuda'), not which one."""
    return device.type


# Steps between compactions of an attack's still-running rows on an asynchronous device.
ASYNC_STEPS_BETWEEN_SYNCS = 8


def steps_between_syncs(device: torch.device) -> int:
    """How often an attack loop drops its finished rows. Dropping them needs their count on the
    host: free on the CPU (every step, so no row is computed after it finished), a stall of the
    queue on CUDA (every `ASYNC_STEPS_BETWEEN_SYNCS` steps; finished rows ride along masked until
    then, so they cost compute, never a different result)."""
    return 1 if device.type == "cpu" else ASYNC_STEPS_BETWEEN_SYNCS


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so a clock read after it
    measures the work; a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def deterministic(device: torch.device | None, tf32: bool = False) -> Iterator[None]:
    """The determinism policy (module docstring) while the block runs on `device`; the previous
    settings are restored after it. A no-op off CUDA."""
    if device is None or device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    cudnn, matmul, fill = (
        torch.backends.cudnn,
        torch.backends.cuda.matmul,
        torch.utils.deterministic,
    )
    saved = (
        matmul.allow_tf32,
        cudnn.allow_tf32,
        cudnn.deterministic,
        cudnn.benchmark,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        fill.fill_uninitialized_memory,  # type: ignore[attr-defined]
    )
    matmul.allow_tf32 = cudnn.allow_tf32 = tf32
    cudnn.deterministic, cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    fill.fill_uninitialized_memory = False  # type: ignore[attr-defined]  # every buffer is written before it is read
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*does not have a deterministic implementation"
            )
            yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved[:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])
        fill.fill_uninitialized_memory = saved[6]  # type: ignore[attr-defined]
