"""Runs evaluations and certifications: spec + runtime -> plan -> executor -> ledger -> store.

The names below load lazily, so `advbench.engine.suite_schema` (and with it the CLI's input
checks) imports without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalOutcome": "advbench.engine.evaluate",
    "evaluate_plan": "advbench.engine.evaluate",
    "run_eval": "advbench.engine.evaluate",
    "EvalPlan": "advbench.engine.plan",
    "resolve": "advbench.engine.plan",
    "CertifySpec": "advbench.engine.spec",
    "EvalSpec": "advbench.engine.spec",
    "Runtime": "advbench.engine.spec",
    "CertifyPlan": "advbench.engine.certify",
    "certify_plan": "advbench.engine.certify",
    "run_certify": "advbench.engine.certify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'advbench.engine' has no attribute {name!r}")
