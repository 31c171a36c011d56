"""Normal and noise training (noise layers live in the model and are active in train mode).

Every epoch writes a resumable training state; the final weights go to safetensors with a card.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import advbench
from advbench.core.errors import CheckpointError, UsageError
from advbench.data import load_dataset
from advbench.models.card import ModelCard, save_checkpoint
from advbench.models.registry import MODELS
from advbench.train.augment import random_crop_flip
from advbench.models.wrapper import RobustModel
from advbench.train.smooth_kernels import model_smoothness


# Recipes this loop runs: cross-entropy with the model's own training-time noise layers
# ("normal"), minus the weighted HaH objectives of the model's HaH blocks ("hah", eq. 5.5),
# or on PGD adversarial examples made on the fly (Madry et al., "pgd-at").
IMPLEMENTED_RECIPES = {"normal", "hah", "pgd-at"}


@dataclass(frozen=True)
class TrainConfig:
    model: str
    dataset: str = "fashion-mnist"
    epochs: int = 4
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    crop_pad: int = 2
    flip: bool = True
    seed: int = 0
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    max_train: int | None = None  # use only the first N training images (smoke tests)
    smooth_lambda: float = 0.0  # smooth-kernel regularizer weight (smooth-kernels §3); < 0 favours high frequencies
    # PGD adversarial training (recipe "pgd-at"): the threat model and the attack's steps.
    at_norm: str = "linf"
    at_eps: float = 0.1
    at_steps: int = 10
    at_rel_stepsize: float = 0.25


@dataclass
class EpochLog:
    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    seconds: float


def _state_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.train-state.safetensors"


def _save_state(path: Path, net: torch.nn.Module, opt: torch.optim.SGD, epoch: int, config: TrainConfig, history: list[EpochLog]) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    for i, p in enumerate(opt.param_groups[0]["params"]):
        buf = opt.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            tensors[f"momentum.{i}"] = buf.detach().cpu().contiguous()
    meta = {"epoch": str(epoch), "config": json.dumps(asdict(config), sort_keys=True), "history": json.dumps([asdict(h) for h in history])}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def _load_state(path: Path, net: torch.nn.Module, opt: torch.optim.SGD, config: TrainConfig) -> tuple[int, list[EpochLog]]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    if json.loads(meta["config"]) != json.loads(json.dumps(asdict(config), sort_keys=True)):
        raise CheckpointError(f"training state {path} was made with a different configuration; remove it or change --out")
    tensors = load_file(str(path))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    device = next(net.parameters()).device
    for i, p in enumerate(opt.param_groups[0]["params"]):
        if f"momentum.{i}" in tensors:
            opt.state[p]["momentum_buffer"] = tensors[f"momentum.{i}"].to(device)
    return int(meta["epoch"]), [EpochLog(**h) for h in json.loads(meta["history"])]


@torch.no_grad()
def _accuracy(model: RobustModel, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    model.net.eval()
    correct = sum(int((model.predict(x[i : i + batch]) == y[i : i + batch]).sum()) for i in range(0, len(y), batch))
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
    """Train `config.model` and write `<out_dir>/<model>.safetensors` plus its card."""
    spec = MODELS.get(config.model)
    if spec.recipe not in IMPLEMENTED_RECIPES:
        raise UsageError(f"model {config.model!r} trains with the {spec.recipe!r} recipe, which advbench does not implement yet")
    torch.manual_seed(config.seed)  # weight init only; batches use the explicit generator below
    train, test = load_dataset(config.dataset, "train", data_dir), load_dataset(config.dataset, "test", data_dir)
    x_train, y_train = train.images.to(device), train.labels.to(device)
    if config.max_train:
        x_train, y_train = x_train[: config.max_train], y_train[: config.max_train]
    x_test, y_test = test.images[:2000].to(device), test.labels[:2000].to(device)
    # The card records the training set's per-channel statistics. Training runs through the same
    # wrapper as evaluation (unfrozen), so both normalize with exactly the card's numbers.
    mean = [round(float(v), 6) for v in x_train.mean(dim=(0, 2, 3))]
    std = [round(float(v), 6) for v in x_train.std(dim=(0, 2, 3))]
    kwargs = {"num_classes": train.num_classes, "in_channels": train.input_shape[0], **config.model_kwargs}
    net = spec.build(**kwargs)
    model = RobustModel(net, train.input_shape, train.num_classes, mean, std, name=config.model, freeze=False).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True)
    steps_per_epoch = math.ceil(len(y_train) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    warmup = max(1, total_steps // 4)
    # Triangular one-cycle schedule: linear ramp up for a quarter of the steps, then down to 0.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: min((t + 1) / warmup, max(0.0, (total_steps - t) / max(1, total_steps - warmup)))
    )

    make_adversarial = _adversary(config, model) if spec.recipe == "pgd-at" else None

    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = _state_path(out_dir, config.model)
    start, history = 0, []
    if resume and state_path.is_file():
        start, history = _load_state(state_path, net, opt, config)
        for _ in range(start * steps_per_epoch):
            sched.step()

    for epoch in range(start, config.epochs):
        gen = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        order = torch.randperm(len(y_train), generator=gen).to(device)
        net.train()
        t0, loss_sum, correct = time.time(), 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            xb = random_crop_flip(x_train[idx], config.crop_pad, config.flip, gen)
            if make_adversarial is not None:
                xb = make_adversarial(xb, y_train[idx], idx, epoch)
            logits = model(xb)
            loss = F.cross_entropy(logits, y_train[idx])
            if spec.recipe == "hah":
                loss = loss - net.hah_objective()
            if config.smooth_lambda:
                loss = loss + config.smooth_lambda * model_smoothness(net)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y_train[idx]).sum())
            if on_batch:
                on_batch(epoch * steps_per_epoch + step + 1, total_steps)
        log = EpochLog(epoch + 1, loss_sum / len(y_train), correct / len(y_train), _accuracy(model, x_test, y_test), time.time() - t0)
        history.append(log)
        _save_state(state_path, net, opt, epoch + 1, config, history)
        if on_epoch:
            on_epoch(log)

    net.eval()
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
            "recipe": spec.recipe,
            **{k: v for k, v in asdict(config).items() if k not in ("model", "dataset", "model_kwargs")},
            "optimizer": "SGD nesterov",
            "schedule": "triangular one-cycle",
            "history": [asdict(h) for h in history],
        },
        paper=spec.paper,
        advbench_version=advbench.__version__,
    )
    card = save_checkpoint(net, card, out_dir)
    state_path.unlink(missing_ok=True)
    return card


def _adversary(config: TrainConfig, model: RobustModel) -> Callable:
    """PGD on the network being trained (eval mode for the attack, train mode restored after)."""
    from advbench.attacks.gradient import PGD, PGDConfig
    from advbench.core.seeding import derive_seed
    from advbench.core.threat import ThreatModel

    threat = ThreatModel(config.at_norm, config.at_eps)
    # Full steps, no early stopping: training wants the strongest point, not the first success.
    attack = PGD(PGDConfig(steps=config.at_steps, rel_stepsize=config.at_rel_stepsize, early_stop=False))

    def make(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        model.net.eval()
        x_adv = attack(model, x, y, threat, idx, derive_seed(config.seed, "pgd-at", epoch)).x_adv.detach()
        model.net.train()
        return x_adv

    return make
