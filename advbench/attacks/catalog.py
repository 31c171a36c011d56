"""Records describing registered attacks, for `advbench attacks` (a table, JSON or names)."""

from __future__ import annotations

import dataclasses
from typing import Any

from advbench.attacks.registry import ATTACKS


def attack_records(pattern: str = "*") -> list[dict[str, Any]]:
    """One record per registered attack matching `pattern`: name, family, norms, its default
    options (the resolved config), description."""
    records = []
    for name in ATTACKS.names(pattern):
        spec = ATTACKS.get(name)
        records.append({"name": name, "family": spec.family, "norms": list(spec.norms),
                        "defaults": dataclasses.asdict(spec.config(**spec.defaults)), "description": spec.description})
    return records
