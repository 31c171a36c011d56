"""Records describing registered models, for `advbench models` (a table, JSON or names)."""

from __future__ import annotations

from typing import Any

from advbench.models.card import available_checkpoints
from advbench.models.paper import paper_facts
from advbench.models.registry import MODELS


def model_records(pattern: str = "*") -> list[dict[str, Any]]:
    """One record per registered model matching `pattern`: name, family, paper and section, recipe,
    the datasets it has checkpoints for, description."""
    records = []
    for name in MODELS.names(pattern):
        spec = MODELS.get(name)
        section = paper_facts(name).get("section", "")
        records.append(
            {
                "name": name,
                "family": spec.family,
                "paper": f"{spec.paper} {section}".strip(),
                "recipe": spec.recipe,
                "checkpoints": available_checkpoints(name),
                "description": spec.description,
            }
        )
    return records
