"""The training configuration: `TrainConfig`, a model's CPU recipe with overrides, and `--set KEY=VALUE`.

The bottom of advbench.train: the loop, the recipes and partial training all read a TrainConfig;
this module imports nothing from them. The fields stay flat (not nested per recipe) because
model cards store them flat under `training`, resumable states compare them, and `--set`
addresses them by name; the comments group them by the recipes that read them.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Mapping

from advbench.core.errors import UsageError
from advbench.models.registry import MODELS


@dataclass(frozen=True)
class TrainConfig:
    model: str
    dataset: str = "fashion-mnist"
    # Every recipe: optimization and data.
    epochs: int = 4
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd (nesterov) or adam; both follow the triangular one-cycle schedule
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    crop_pad: int = 2
    flip: bool = True
    seed: int = 0
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    max_train: int | None = None  # use only the first N training images
    normalize: bool = (
        True  # False: the net sees [0,1] pixels (front ends whose thresholds are in pixel units)
    )
    init_from: str | None = (
        None  # start from this zoo model's checkpoint (fine-tuning; 0 epochs copies it)
    )
    smooth_lambda: float = (
        0.0  # smooth-kernel regularizer weight (smooth-kernels §3); < 0 favours high frequencies
    )
    # Adversarial recipes: the threat model and PGD steps of the inner maximization.
    at_norm: str = "linf"
    at_eps: float = 0.1
    at_steps: int = 10
    at_rel_stepsize: float = 0.25
    early_stop: bool = (
        True  # adversarial recipes keep the epoch with the best robust validation accuracy
    )
    val_images: int = 1000  # held out from the end of the training set for that choice
    # One recipe each: trades / trades-awp, alp, kl-pairing, mart, fat, awp / trades-awp, gauss, polarizer.
    trades_beta: float = 6.0
    alp_weight: float = 0.5
    pairing_gamma: float = 1.0
    mart_beta: float = 6.0
    fat_tau: int = 2
    awp_gamma: float = 5e-3
    gauss_q: float = 0.5
    polarizer_sigma1: float = 0.35
    polarizer_sigma2: float = 0.15
    dictionary_steps: int = (
        1000  # sparse-coding: minibatch steps of dictionary learning (dissertation App. B.3: 1000)
    )
    # Partial adversarial training (advbench.train.partial).
    recipe: str | None = (
        None  # override the model's own recipe (partial adversarial training's stages)
    )
    partial: str | None = (
        None  # A1N2 | N1A2 | A2N1 | N2A1: this run is stage 2 of partial adversarial training
    )
    cutoff: str | None = None  # the last module of the earlier layers, for `partial`

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise UsageError(f"optimizer is sgd or adam, not {self.optimizer!r}")
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise UsageError(
                "training needs epochs >= 0, batch size >= 1 and a positive learning rate"
            )
        if self.max_train is not None and self.max_train < 1:
            raise UsageError(
                f"--max-train must be a positive number of training images, got {self.max_train}"
            )
        if self.val_images < 0:
            raise UsageError(f"val_images must be >= 0, got {self.val_images}")
        if self.at_steps < 0:
            raise UsageError(f"--at-steps must be >= 0, got {self.at_steps}")
        if not (math.isfinite(self.at_eps) and self.at_eps >= 0):
            raise UsageError(f"--at-eps must be a finite number >= 0, got {self.at_eps}")
        norms = ("linf", "l2", "l1", "l0")
        if self.at_norm not in norms:
            raise UsageError(f"--at-norm is one of {', '.join(norms)}, not {self.at_norm!r}")
        if self.seed < 0:
            raise UsageError(f"--seed must be an integer >= 0, got {self.seed}")
        _check_model_kwargs(self.model_kwargs)


def _check_model_kwargs(kwargs: Mapping[str, Any]) -> None:
    """--width and --noise-sigma (or the same keys in --set model_kwargs=...): a width of at least
    one channel, a noise level that is a finite number >= 0."""
    width = kwargs.get("width")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise UsageError(f"--width must be a whole number of channels >= 1, got {width!r}")
    sigma = kwargs.get("noise_sigma")
    if sigma is not None and (
        isinstance(sigma, bool)
        or not isinstance(sigma, (int, float))
        or not (math.isfinite(sigma) and sigma >= 0)
    ):
        raise UsageError(f"--noise-sigma must be a finite number >= 0, got {sigma!r}")


def config_for(model: str, **overrides: Any) -> TrainConfig:
    """The model's Fashion-MNIST CPU recipe (its registry entry), then explicit overrides."""
    spec = MODELS.get(model)
    values = {**spec.cpu_train, **overrides}
    values["model_kwargs"] = {
        **spec.cpu_train.get("model_kwargs", {}),
        **overrides.get("model_kwargs", {}),
    }
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(
            f"unknown training option(s) {', '.join(unknown)}; known: {', '.join(sorted(known - {'model'}))}"
        )
    return TrainConfig(model=model, **values)


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def parse_options(items: list[str]) -> dict[str, Any]:
    """['at_steps=7', 'model_kwargs={"width": 8}'] -> typed values; unknown keys are errors."""
    kinds = _field_types()
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise UsageError(f"training option {item!r} must look like KEY=VALUE")
        if key not in kinds or key == "model":
            raise UsageError(f"unknown training option {key!r}; see `advbench recipes`")
        kind = kinds[key]
        # Optional[X] (a Union with None) -> X; generics such as dict[str, Any] stay as they are.
        union = typing.get_origin(kind) in (typing.Union, types.UnionType)
        base = (
            next((a for a in typing.get_args(kind) if a is not type(None)), kind) if union else kind
        )
        try:
            if raw.lower() in ("none", "null") and type(None) in typing.get_args(kind):
                values[key] = None
            elif base is bool:
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                values[key] = raw.lower() in ("true", "1", "yes")
            elif typing.get_origin(base) is dict:
                values[key] = json.loads(raw)
                if not isinstance(values[key], dict):  # a JSON number or list is no mapping
                    raise ValueError(raw)
            else:
                values[key] = base(raw)
        except (ValueError, json.JSONDecodeError):
            raise UsageError(
                f"training option {key}={raw!r} is not a valid {getattr(base, '__name__', str(base))}"
            ) from None
    return values


def option_rows() -> list[list[str]]:
    """[option, type, default] for every training option (the `advbench recipes` table)."""
    kinds = _field_types()
    rows = []
    for f in fields(TrainConfig):
        if f.name == "model":
            continue
        default = f.default if f.default_factory is MISSING else f.default_factory()
        rows.append([f.name, str(kinds[f.name]).replace("typing.", ""), repr(default)])
    return rows


def merge_overrides(
    dataset: str,
    given: Mapping[str, object],
    set_options: list[str],
    model_kwargs: Mapping[str, object],
) -> dict[str, object]:
    """The overrides `advbench train` passes to `config_for`: the dataset, the options given (None:
    not given), then `--set KEY=VALUE`, then the given model kwargs on top of any `--set model_kwargs`."""
    set_values = parse_options(set_options or [])
    overrides: dict[str, object] = {
        "dataset": dataset,
        **{k: v for k, v in given.items() if v is not None},
        **set_values,
    }
    kwargs = {k: v for k, v in model_kwargs.items() if v is not None}
    if kwargs:
        overrides["model_kwargs"] = {**set_values.get("model_kwargs", {}), **kwargs}
    return overrides
