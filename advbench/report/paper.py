"""The paper's own robust accuracy beside ours, only where the settings agree.

A run stores the paper facts of its model card (`engine.plan.EvalPlan.paper`): the paper's own
setting (dataset, threat model) and every number it reports with the setting it was measured in.
A leaderboard row shows the paper's number only when the paper reports one for the row's exact
dataset, norm and eps; otherwise it shows the paper's headline in the paper's own setting in a
separate, labelled column that names that setting, so a CIFAR-10 L2 number never sits beside a
Fashion-MNIST Linf one as if they were comparable. Of several numbers for one setting the lowest
is shown (the paper's strongest attack), with the attack and where in the paper it is.
"""

from __future__ import annotations

import math
from typing import Any

from advbench.core.paper_facts import own_variant

NOT_REPORTED = "not reported"


def _robust(
    reported: list[dict[str, Any]], dataset: str | None, norm: str | None, eps: float | None
) -> dict[str, Any] | None:
    """The paper's lowest robust accuracy at exactly this setting, or None."""
    if dataset is None or norm is None or eps is None:
        return None
    found = [
        r
        for r in reported
        if r.get("metric") == "robust_accuracy"
        and r.get("dataset") == dataset
        and r.get("norm") == norm
        and r.get("eps") is not None
        and math.isclose(float(r["eps"]), float(eps), rel_tol=1e-3)
    ]
    return min(found, key=lambda r: r["value"]) if found else None


def _cell(r: dict[str, Any]) -> str:
    return f"{100 * r['value']:.2f} ({r.get('attack', '')}, {r.get('where', '')})"


def paper_value(paper: dict[str, Any], dataset: str, norm: str, eps: float) -> float | None:
    """The paper's robust accuracy (a share) in exactly this setting, or None."""
    r = _robust(own_variant(paper), dataset, norm, eps)
    return None if r is None else float(r["value"])


def paper_numbers(paper: dict[str, Any], dataset: str, norm: str, eps: float) -> tuple[str, str]:
    """(the paper's number in this setting, the paper's headline in its own setting naming it).

    Exactly one of the two is filled when the model has paper facts: the first when the paper
    reports this setting, else the second ("not reported" when the paper gives no robust number
    in its own setting either). Both are "" for a model without paper facts (an external model).
    """
    if not paper:
        return "", ""
    reported = own_variant(paper)  # not another variant's number (e.g. Table B.1's other T)
    same = _robust(reported, dataset, norm, eps)
    if same is not None:
        return _cell(same), ""
    own = paper.get("threat_model") or {}
    headline = _robust(reported, paper.get("dataset"), own.get("norm"), own.get("eps"))
    if headline is None:
        return "", NOT_REPORTED
    return (
        "",
        f"{paper.get('dataset')} {headline['norm']} {float(headline['eps']):g}: {_cell(headline)}",
    )
