"""The model registry: paper names -> architecture factories with their defaults and recipe."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from advbench.core.errors import UsageError
from advbench.core.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its factory and default kwargs, paper and family, training recipe,
    threat models and the Fashion-MNIST CPU recipe its shipped checkpoint was trained with."""

    name: str
    factory: Callable[..., nn.Module]
    family: str
    paper: str
    description: str
    recipe: str = "normal"  # training recipe name (advbench.train)
    defaults: dict[str, Any] = field(default_factory=dict)
    threat_models: tuple[str, ...] = ("linf", "l2")
    # Fashion-MNIST CPU recipe: TrainConfig overrides that train the shipped checkpoint in
    # <= 20 minutes on 2 cores (widths in `model_kwargs`, epochs, subset, attack steps).
    cpu_train: dict[str, Any] = field(default_factory=dict)

    def build(self, **kwargs: Any) -> nn.Module:
        """The architecture with the defaults, overridden by `kwargs` (untrained). A kwarg the
        factory does not take is a UsageError naming the ones it does (they come from --set
        model_kwargs=... or a model card)."""
        values = {**self.defaults, **kwargs}
        try:
            accepted = dict(inspect.signature(self.factory).parameters)
        except (TypeError, ValueError):  # a builtin without a signature: let the call decide
            accepted = {}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        unknown = sorted(set(values) - set(accepted)) if accepted and not takes_any else []
        if unknown:
            raise UsageError(
                f"model {self.name} takes no option(s) {', '.join(unknown)}; it takes: "
                + ", ".join(
                    k
                    for k, p in accepted.items()
                    if p.kind is p.KEYWORD_ONLY or p.default is not p.empty
                )
            )
        try:
            return self.factory(**values)
        except (
            TypeError,
            ValueError,
        ) as exc:  # e.g. head_pool="x", width="8": the options are at fault
            given = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
            detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise UsageError(
                f"cannot build model {self.name} with {given or 'its defaults'}: {detail}"
            ) from None


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(
    name: str,
    *,
    family: str,
    paper: str,
    description: str,
    recipe: str = "normal",
    threat_models: tuple[str, ...] = ("linf", "l2"),
    **defaults: Any,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a factory under a paper's model name, with its default kwargs and training recipe."""
    return MODELS.decorator(
        name,
        lambda fn: ModelSpec(name, fn, family, paper, description, recipe, defaults, threat_models),
    )
