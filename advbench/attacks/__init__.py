"""Attacks: each a small class with a frozen typed config, called as attack(model, x, y, threat).

Every attack module is named in `catalog`, imported here, so the registry is complete."""

from advbench.attacks import catalog  # noqa: F401  (fills ATTACKS)
from advbench.attacks.base import Attack, AttackResult, MinimumNormAttack
from advbench.attacks.registry import ATTACKS, build_attack, register_attack

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackResult",
    "MinimumNormAttack",
    "build_attack",
    "register_attack",
]
