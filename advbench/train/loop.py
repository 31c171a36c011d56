"""The training loop: data, optimizer, schedule, early stopping, resumable state, card.

What is minimized comes from the model's recipe (advbench.train.recipes). Every epoch writes a
resumable training state; the final weights go to safetensors with a card.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from advbench.attacks.gradient import PGD, PGDConfig
from advbench.core.errors import CheckpointError, UsageError
from advbench.core.seeding import derive_seed
from advbench.core.threat import Norm, ThreatModel
from advbench.core.version import __version__
from advbench.data import load_dataset
from advbench.models.card import ModelCard, build_from_card, load_model, save_checkpoint
from advbench.models.paper import default_threat, paper_facts
from advbench.models.registry import MODELS
from advbench.models.state_fit import load_fitting
from advbench.models.wrapper import RobustModel
from advbench.train.augment import random_crop_flip
from advbench.train.config import TrainConfig
from advbench.train.recipes import RECIPES, StepContext
from advbench.train.smooth_kernels import model_smoothness
from advbench.train.stages import freeze_and_reset, parse_code


@dataclass
class EpochLog:
    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    seconds: float
    val_robust_acc: float | None = None  # adversarial recipes: PGD accuracy on the held-out images


def _state_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.train-state.safetensors"


def _training_record(config: TrainConfig) -> dict[str, Any]:
    """The settings a card's `training` records (its history and provenance come on top)."""
    return {
        **{
            k: v
            for k, v in asdict(config).items()
            if k not in ("model", "dataset", "model_kwargs", "recipe")
        },
        "recipe": config.recipe or MODELS.get(config.model).recipe,
        "optimizer": f"{config.optimizer}{' nesterov' if config.optimizer == 'sgd' else ''}",
    }


def finished_card(config: TrainConfig, out_dir: Path) -> ModelCard | None:
    """The card of a finished training of exactly `config` in `out_dir` (no training state left), else None."""
    path = out_dir / f"{config.model}.yaml"
    if not path.is_file() or _state_path(out_dir, config.model).is_file():
        return None
    card = ModelCard.from_yaml(path)
    want = {
        "dataset": config.dataset,
        "training": _training_record(config),
        "kwargs": config.model_kwargs,
    }
    have = {
        "dataset": card.dataset,
        "training": {k: card.training.get(k) for k in want["training"]},
        "kwargs": {k: card.kwargs.get(k) for k in config.model_kwargs},
    }
    return card if json.loads(json.dumps(want)) == json.loads(json.dumps(have)) else None


def _save_state(
    path: Path,
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    epoch: int,
    config: TrainConfig,
    history: list[EpochLog],
    best: dict[str, torch.Tensor] | None,
) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in (best or {}).items()})
    for i, p in enumerate(opt.param_groups[0]["params"]):
        for key, value in opt.state.get(p, {}).items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{i}.{key}"] = value.detach().cpu().contiguous()
    meta = {
        "epoch": str(epoch),
        "config": json.dumps(asdict(config), sort_keys=True),
        "history": json.dumps([asdict(h) for h in history]),
    }
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def _load_state(
    path: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, config: TrainConfig
) -> tuple[int, list[EpochLog], dict[str, torch.Tensor] | None]:
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        made_with = json.loads(meta["config"])
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"training state {path} cannot be read (truncated or corrupt?): {exc}; remove it to start over"
        ) from None
    if made_with != json.loads(json.dumps(asdict(config), sort_keys=True)):
        raise CheckpointError(
            f"training state {path} was made with a different configuration; remove it or change --out"
        )
    tensors = load_file(str(path))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    device = next(net.parameters()).device
    for i, p in enumerate(opt.param_groups[0]["params"]):
        prefix = f"opt.{i}."
        for key in [k for k in tensors if k.startswith(prefix)]:
            value = tensors[key]
            opt.state[p][key[len(prefix) :]] = value if key.endswith(".step") else value.to(device)
    best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")} or None
    return int(meta["epoch"]), [EpochLog(**h) for h in json.loads(meta["history"])], best


def _init_weights(net: torch.nn.Module, source: str, dataset: str, out_dir: Path) -> ModelCard:
    """Load a checkpoint (the output folder's first, else the zoo's) into `net`; a smoothing
    wrapper accepts its base's weights."""
    local = Path(source) if source.endswith(".yaml") else out_dir / f"{source}.yaml"
    if local.is_file():
        card = ModelCard.from_yaml(local)
        loaded = build_from_card(card, local.parent)
    else:
        loaded, card = load_model(source, dataset)
    state = loaded.net.state_dict()
    target = net.state_dict()
    if set(state) != set(target) and {f"base.{k}" for k in state} == set(target):
        state = {f"base.{k}": v for k, v in state.items()}
    load_fitting(net, state, f"cannot start from {source}: its weights do not fit")
    return card


@torch.no_grad()
def _accuracy(model: RobustModel, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    model.net.eval()
    correct = sum(
        int((model.predict(x[i : i + batch]) == y[i : i + batch]).sum())
        for i in range(0, len(y), batch)
    )
    return correct / len(y)


def _robust_accuracy(
    model: RobustModel, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, epoch: int
) -> float:
    """PGD-10 accuracy under the training threat model (early stopping's criterion)."""
    model.net.eval()
    threat, attack, correct = (
        ThreatModel(Norm(config.at_norm), config.at_eps),
        PGD(PGDConfig(steps=10, rel_stepsize=0.25)),
        0,
    )
    for i in range(0, len(y), 500):
        idx = torch.arange(i, min(i + 500, len(y)), device=x.device)
        correct += int(
            (
                ~attack(
                    model,
                    x[idx],
                    y[idx],
                    threat,
                    idx,
                    derive_seed(config.seed, "validation", epoch),
                ).success
            ).sum()
        )
    return correct / len(y)


def train_model(
    config: TrainConfig,
    out_dir: Path,
    device: torch.device,
    data_dir: str | None = None,
    resume: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> ModelCard:
    """Train `config.model` with its recipe; write `<out_dir>/<model>.safetensors` plus its card."""
    spec = MODELS.get(config.model)
    recipe = RECIPES.get(config.recipe or spec.recipe)
    torch.manual_seed(
        config.seed
    )  # weight init and noise draws; batches use the explicit generator below
    train, test = (
        load_dataset(config.dataset, "train", data_dir),
        load_dataset(config.dataset, "test", data_dir),
    )
    x_all, y_all = train.images.to(device), train.labels.to(device)
    # Early stopping's validation images come from the end of the training set (at most 10% of it).
    holdout = (
        min(config.val_images, len(y_all) // 10) if recipe.adversarial and config.early_stop else 0
    )
    x_val, y_val = x_all[len(y_all) - holdout :], y_all[len(y_all) - holdout :]
    x_train, y_train = x_all[: len(y_all) - holdout], y_all[: len(y_all) - holdout]
    if config.max_train:
        x_train, y_train = x_train[: config.max_train], y_train[: config.max_train]
    x_test, y_test = test.images[:2000].to(device), test.labels[:2000].to(device)
    kwargs = {
        "num_classes": train.num_classes,
        "in_channels": train.input_shape[0],
        **config.model_kwargs,
    }
    net = spec.build(**kwargs)
    source = (
        _init_weights(net, config.init_from, config.dataset, out_dir) if config.init_from else None
    )
    freeze_statistics = None
    if config.partial:
        (_, early_stage), _ = parse_code(config.partial)
        if not config.cutoff or source is None:
            raise UsageError(
                "stage 2 of partial adversarial training needs --cutoff and the stage-1 weights (init_from)"
            )
        freeze_statistics = freeze_and_reset(
            net, config.cutoff, "early" if early_stage == 1 else "late"
        )
    # The card records the normalization; training runs through the same wrapper as evaluation
    # (unfrozen), so both normalize with exactly the card's numbers.
    if source is not None:
        mean, std = source.mean, source.std
    elif config.normalize:
        mean = [round(float(v), 6) for v in x_train.mean(dim=(0, 2, 3))]
        std = [round(float(v), 6) for v in x_train.std(dim=(0, 2, 3))]
    else:
        mean = std = None
    model = RobustModel(
        net, train.input_shape, train.num_classes, mean, std, name=config.model, freeze=False
    ).to(device)
    if config.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            [p for p in net.parameters() if p.requires_grad],
            lr=config.lr,
            weight_decay=config.weight_decay,
        )
    else:
        opt = torch.optim.SGD(
            [p for p in net.parameters() if p.requires_grad],
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=True,
        )
    steps_per_epoch = math.ceil(len(y_train) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    warmup = max(1, total_steps // 4)
    # Triangular one-cycle schedule: linear ramp up for a quarter of the steps, then down to 0.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda t: min((t + 1) / warmup, max(0.0, (total_steps - t) / max(1, total_steps - warmup))),
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = _state_path(out_dir, config.model)
    history: list[EpochLog] = []
    start, best = 0, None
    if resume and state_path.is_file():
        start, history, best = _load_state(state_path, net, opt, config)
        with (
            warnings.catch_warnings()
        ):  # fast-forwarding the schedule before any optimizer step is intended
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(start * steps_per_epoch):
                sched.step()
    elif config.epochs > 0:
        recipe.prepare(net, x_train, config)

    for epoch in range(start, config.epochs):
        recipe.start_epoch(net, epoch, config)
        gen = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        order = torch.randperm(len(y_train), generator=gen).to(device)
        net.train()
        if freeze_statistics:
            freeze_statistics()
        t0, loss_sum, correct = time.time(), 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            xb, yb = random_crop_flip(x_train[idx], config.crop_pad, config.flip, gen), y_train[idx]
            ctx = StepContext(model, config, epoch, step / steps_per_epoch)
            loss, logits = recipe.loss(ctx, xb, yb, idx)
            if config.smooth_lambda:
                loss = loss + config.smooth_lambda * model_smoothness(net)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for undo in ctx.after_step:
                undo()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            if on_batch:
                on_batch(epoch * steps_per_epoch + step + 1, total_steps)
        val_robust = _robust_accuracy(model, x_val, y_val, config, epoch) if holdout else None
        log = EpochLog(
            epoch + 1,
            loss_sum / len(y_train),
            correct / len(y_train),
            _accuracy(model, x_test, y_test),
            time.time() - t0,
            val_robust,
        )
        if val_robust is not None and (
            best is None or val_robust > max(h.val_robust_acc or 0.0 for h in history)
        ):
            best = {k: v.detach().clone() for k, v in net.state_dict().items()}
        history.append(log)
        _save_state(state_path, net, opt, epoch + 1, config, history, best)
        if on_epoch:
            on_epoch(log)

    if best is not None:
        net.load_state_dict(best)
    net.eval()
    kept = (
        max(history, key=lambda h: h.val_robust_acc or 0.0).epoch
        if best is not None
        else len(history)
    )
    card = ModelCard(
        name=config.model,
        dataset=config.dataset,
        weights=f"{config.model}.safetensors",
        sha256="",
        input_shape=list(train.input_shape),
        num_classes=train.num_classes,
        kwargs={**spec.defaults, **kwargs},
        mean=mean,
        std=std,
        training={
            **_training_record(config),
            "schedule": "triangular one-cycle",
            "kept_epoch": kept,
            "history": [asdict(h) for h in history],
            **({"base_training": source.training} if source is not None else {}),
        },
        paper=spec.paper,
        advbench_version=__version__,
        threat_model=default_threat(config.dataset),
        paper_facts=paper_facts(config.model),
    )
    card = save_checkpoint(net, card, out_dir)
    state_path.unlink(missing_ok=True)
    return card
