"""How many images an evaluation batch holds: 256 on the CPU, on CUDA as many as free memory holds.

A GPU runs a batch of 256 small images far below its throughput, so on CUDA the batch grows with
the free memory, measured like certification's noise batch (`certification.forward.auto_noise_batch`):
a probe forward and backward pass of `PROBE` images gives the bytes per image, and the batch is
half the free memory over that, between `DEFAULT_BATCH` and `MAX_EVAL_BATCH`. An attack's EOT
copies and a vote's draws run in passes of a bounded number of rows (`losses.EOT_ROWS`,
`vote.VOTE_ROWS`), so they do not multiply it. No result depends on the batch: every sample's
randomness is keyed by its index or its content, and the rows are tested equal across batches.
"""

from __future__ import annotations

import torch

from advbench.models.wrapper import RobustModel

DEFAULT_BATCH = 256  # images per evaluation batch off CUDA (and the least on CUDA)
MAX_EVAL_BATCH = 4096  # past it a batch only delays the first stored rows
PROBE = 32  # images in the probe pass that measures memory per image


def auto_eval_batch(model: RobustModel, device: torch.device, cap: int = MAX_EVAL_BATCH) -> int:
    """Images per evaluation batch on `device` (module docstring)."""
    if device.type != "cuda":
        return DEFAULT_BATCH
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    x = torch.rand((PROBE, *model.input_shape), device=model.device, requires_grad=True)
    with torch.enable_grad(), model.attack_mode():  # as attacks take gradients (BPDA surrogates)
        out = model(x)
        if out.requires_grad:
            torch.autograd.grad(out.sum(), x)  # the input's gradient only, as attacks take it
    per_image = max(1, (torch.cuda.max_memory_allocated(device) - before) // PROBE)
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(DEFAULT_BATCH, min(cap, free // 2 // per_image)))
