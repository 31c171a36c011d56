"""Rows describing registered attacks, for `advbench attacks`."""

from __future__ import annotations

import dataclasses

from advbench.attacks.registry import ATTACKS


def attack_rows(pattern: str = "*") -> list[list[str]]:
    rows = []
    for name in ATTACKS.names(pattern):
        spec = ATTACKS.get(name)
        config = dataclasses.asdict(spec.config(**spec.defaults))
        rows.append([name, spec.family, ", ".join(spec.norms), ",".join(f"{k}={v}" for k, v in config.items()), spec.description])
    return rows
