"""Attacks register from one explicit catalog: no attack appears only because some other module
happened to import its module first."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "advbench" / "attacks"


def test_every_module_that_registers_attacks_is_in_the_catalog() -> None:
    from advbench.attacks.catalog import MODULES

    registering = {f"advbench.attacks.{p.stem}" for p in ROOT.glob("*.py") if "@register_attack(" in p.read_text()}
    assert registering == {m.__name__ for m in MODULES}
