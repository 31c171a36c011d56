"""The attack catalog: every module whose classes register attacks (`@register_attack`), named
once, here, and records describing the registered attacks, for `advbench attacks`.

`advbench.attacks` imports this module, so the registry is complete whichever attack module a
caller imported first; a new attack module is added to `MODULES`."""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

from advbench.attacks import (
    apgd,
    auto,
    autoattack,
    blackbox,
    decision_based,
    fmn_ddn,
    gradient,
    minimum_norm,
    random_noise,
    search,
    transfer,
    zeroth_order,
)
from advbench.attacks.registry import ATTACKS

MODULES: tuple[ModuleType, ...] = (
    gradient,
    apgd,
    minimum_norm,
    fmn_ddn,
    blackbox,
    zeroth_order,
    random_noise,
    decision_based,
    search,
    transfer,
    autoattack,
    auto,
)


def attack_records(pattern: str = "*") -> list[dict[str, Any]]:
    """One record per registered attack matching `pattern`: name, family, norms, its default
    options (the resolved config), description."""
    records = []
    for name in ATTACKS.names(pattern):
        spec = ATTACKS.get(name)
        records.append(
            {
                "name": name,
                "family": spec.family,
                "norms": list(spec.norms),
                "defaults": dataclasses.asdict(spec.config(**spec.defaults)),
                "description": spec.description,
            }
        )
    return records
