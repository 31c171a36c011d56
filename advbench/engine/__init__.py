"""Runs evaluations: data -> model -> attacks -> store, batch by batch, resumable."""

from advbench.engine.evaluate import EvalConfig, EvalOutcome, run_eval

__all__ = ["EvalConfig", "EvalOutcome", "run_eval"]
