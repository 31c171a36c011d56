"""Runs evaluations and certifications: spec + runtime -> plan -> executor -> ledger -> store."""

from advbench.engine.evaluate import EvalOutcome, evaluate_plan, run_eval
from advbench.engine.plan import EvalPlan, resolve
from advbench.engine.spec import CertifySpec, EvalSpec, Runtime

__all__ = ["CertifySpec", "EvalOutcome", "EvalPlan", "EvalSpec", "Runtime", "evaluate_plan", "resolve", "run_eval"]
