"""The values of a model card read from YAML, checked before anything is built from them: a card
is a file the user names (`--zoo`, `init_from`), so a value of the wrong type or range is one line
naming the card, the key and the value (CheckpointError, exit 2), never a TypeError deep inside
torch."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, NoReturn

from advbench.core.errors import CheckpointError
from advbench.core.files import describe

MAPPINGS = ("kwargs", "training", "metrics", "threat_model", "paper_facts")
DTYPES = ("float32", "float16", "bfloat16")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_card(card: Any, path: Path) -> None:
    """Every value of `card` (a ModelCard read from `path`) has the type and range the loader
    relies on. (Typed Any: models.card imports this module, and the import graph has no cycle.)"""

    def bad(key: str, what: str) -> NoReturn:
        raise CheckpointError(
            f"model card {path}: '{key}' must be {what}, got {describe(getattr(card, key))}"
        )

    for key in ("name", "dataset", "weights", "sha256", "stored_dtype"):
        if not isinstance(getattr(card, key), str) or not getattr(card, key):
            bad(key, "a non-empty string")
    if not re.fullmatch(r"[0-9a-f]{64}", card.sha256):
        bad("sha256", "the weights' sha256 (64 hex digits)")
    if Path(card.weights).name != card.weights or card.weights in (".", ".."):
        bad("weights", "the name of a file beside the card")
    if card.stored_dtype not in DTYPES:
        bad("stored_dtype", f"one of {', '.join(DTYPES)}")
    shape = card.input_shape
    if not (
        isinstance(shape, list) and len(shape) == 3 and all(_is_int(d) and d >= 1 for d in shape)
    ):
        bad("input_shape", "[channels, height, width], three integers >= 1")
    if not (_is_int(card.num_classes) and card.num_classes >= 2):
        bad("num_classes", "an integer >= 2")
    for key in MAPPINGS:
        if not isinstance(getattr(card, key), dict):
            bad(key, "a mapping")
    for key in ("mean", "std"):
        values = getattr(card, key)
        if values is None:
            continue
        if not (
            isinstance(values, list)
            and len(values) == shape[0]
            and all(_is_number(v) for v in values)
            and (key == "mean" or all(v > 0 for v in values))
        ):
            what = "positive numbers" if key == "std" else "finite numbers"
            bad(key, f"null or a list of {shape[0]} {what} (one per channel)")
