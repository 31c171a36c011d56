"""`--set KEY=VALUE` training options, typed by the TrainConfig dataclass."""

from __future__ import annotations

import json
import typing
from dataclasses import MISSING, fields
from typing import Any

from advbench.core.errors import UsageError
from advbench.train.loop import TrainConfig


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def parse_options(items: list[str]) -> dict[str, Any]:
    """['at_steps=7', 'model_kwargs={"width": 8}'] -> typed values; unknown keys are errors."""
    types = _field_types()
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise UsageError(f"training option {item!r} must look like KEY=VALUE")
        if key not in types or key == "model":
            raise UsageError(f"unknown training option {key!r}; see `advbench recipes`")
        kind = types[key]
        # Optional[X] (a Union with None) -> X; generics such as dict[str, Any] stay as they are.
        union = typing.get_origin(kind) in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union))
        base = next((a for a in typing.get_args(kind) if a is not type(None)), kind) if union else kind
        try:
            if raw.lower() in ("none", "null") and type(None) in typing.get_args(kind):
                values[key] = None
            elif base is bool:
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                values[key] = raw.lower() in ("true", "1", "yes")
            elif typing.get_origin(base) is dict:
                values[key] = json.loads(raw)
            else:
                values[key] = base(raw)
        except (ValueError, json.JSONDecodeError):
            raise UsageError(f"training option {key}={raw!r} is not a valid {getattr(base, '__name__', str(base))}") from None
    return values


def option_rows() -> list[list[str]]:
    types = _field_types()
    rows = []
    for f in fields(TrainConfig):
        if f.name == "model":
            continue
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        rows.append([f.name, str(types[f.name]).replace("typing.", ""), repr(default)])
    return rows
