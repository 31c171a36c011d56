"""Attacks: each a small class with a frozen typed config, called as attack(model, x, y, threat)."""

# Importing the modules registers their attacks.
from advbench.attacks import (  # noqa: E402,F401
    apgd,
    auto,
    autoattack,
    blackbox,
    gradient,
    minimum_norm,
    search,
    transfer,
)
from advbench.attacks.base import Attack, AttackResult, MinimumNormAttack
from advbench.attacks.registry import ATTACKS, build_attack, register_attack

__all__ = ["ATTACKS", "Attack", "AttackResult", "MinimumNormAttack", "build_attack", "register_attack"]
