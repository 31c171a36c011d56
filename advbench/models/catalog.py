"""Rows describing registered models, for `advbench models`."""

from __future__ import annotations

from advbench.models.card import available_checkpoints
from advbench.models.paper import paper_facts
from advbench.models.registry import MODELS


def model_rows(pattern: str = "*") -> list[list[str]]:
    rows = []
    for name in MODELS.names(pattern):
        spec = MODELS.get(name)
        section = paper_facts(name).get("section", "")
        rows.append([name, spec.family, f"{spec.paper} {section}".strip(), spec.recipe, ", ".join(available_checkpoints(name)) or "-", spec.description])
    return rows
