"""Partial adversarial training (dissertation Ch. 3): which layers does adversarial training need?

Stage 1 trains the whole network with the method of the part marked 1 in the code (A1N2, N1A2,
A2N1, N2A1; advbench.train.stages); stage 2 freezes that part (weights fixed, batch-norm
statistics frozen: its layers stay in eval mode), re-initializes the other part and trains it
with its own method. Both stages run through the training loop, which this module sits above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from advbench.models.card import ModelCard
from advbench.models.registry import MODELS
from advbench.train.config import TrainConfig
from advbench.train.loop import EpochLog, finished_card, train_model
from advbench.train.stages import METHOD, parse_code, split_modules


def train_partial(
    code: str,
    cutoff: str,
    base_config: TrainConfig,
    out_dir: Path,
    device: torch.device,
    data_dir: str | None = None,
    resume: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> ModelCard:
    """Both stages; returns the stage-2 card. Stage 1 is written to out_dir/stage1.

    `data_dir` and `resume` go to both stages; resuming keeps a finished stage 1 made with the
    same configuration instead of training it again.
    """
    (early_method, early_stage), (late_method, _) = parse_code(code)
    # A --cutoff that names no module fails now, not after stage 1 has trained.
    split_modules(MODELS.get(base_config.model).build(**base_config.model_kwargs), cutoff)
    first_method = early_method if early_stage == 1 else late_method
    second_method = late_method if early_stage == 1 else early_method
    stage1_dir = out_dir / "stage1"
    stage1 = replace(base_config, recipe=METHOD[first_method], partial=None, cutoff=None)
    if not (resume and finished_card(stage1, stage1_dir)):
        train_model(
            stage1, stage1_dir, device, data_dir, resume, on_batch=on_batch, on_epoch=on_epoch
        )
    stage2 = replace(
        base_config,
        recipe=METHOD[second_method],
        init_from=str(stage1_dir / f"{base_config.model}.yaml"),
        partial=code.upper(),
        cutoff=cutoff,
    )
    return train_model(
        stage2, out_dir, device, data_dir, resume, on_batch=on_batch, on_epoch=on_epoch
    )
