"""The record format of a model's paper facts, shared by the layers that read it.

`models.paper` reads the facts from `models/paper_facts.yaml` (and cards copy their entry); a
stored run keeps that copy, which `report.paper` reads back without loading the models package
(and with it torch). Both decide with this module which reported numbers are the model's own.
"""

from __future__ import annotations

from typing import Any


def own_variant(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """The reported numbers that belong to the model the facts describe.

    A paper may report a sweep over one hyperparameter (e.g. dissertation Table B.1: the
    non-random sparse-coding encoder for T = 1, 2, 5, 10, 15, 20); those entries carry
    `variant`. The facts' own top-level `variant` names the one the registered model is (T=15);
    entries of any other variant are left out. Without a top-level `variant`, only entries
    without one count.
    """
    mine = facts.get("variant")
    return [r for r in facts.get("reported") or [] if r.get("variant") in (None, mine)]
