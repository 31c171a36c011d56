"""Rows describing registered models, for `advbench models`."""

from __future__ import annotations

from advbench.models.card import available_checkpoints
from advbench.models.registry import MODELS


def model_rows(pattern: str = "*") -> list[list[str]]:
    rows = []
    for name in MODELS.names(pattern):
        spec = MODELS.get(name)
        rows.append([name, spec.family, spec.paper, ", ".join(available_checkpoints(name)) or "-", ", ".join(spec.threat_models), spec.description])
    return rows
