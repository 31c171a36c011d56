"""`advbench eval` as a library function: spec + runtime -> plan -> executor -> ledger -> summary.

`run_eval(spec, runtime)` evaluates a model by name; `evaluate_plan(plan, runtime)` takes any plan,
including `EvalPlan.from_objects(model, x, y)` for a model object and tensors. Every batch is
committed as it finishes, and the same call resumes an interrupted run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from advbench.attacks.checks import CheckReport, CheckResult, gradient_masking_checks
from advbench.attacks.ensemble import robust_ensemble
from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed
from advbench.engine.executors import (
    executor_for,
    portable,
    require,
    same_checkpoint,
    worker_device,
)
from advbench.engine.plan import EvalPlan, resolve
from advbench.engine.runs import RunLedger, run_meta
from advbench.engine.spec import EvalSpec, Runtime, spec_dict
from advbench.store import RunSummary, Store, summarize

ProgressFn = Callable[[int, int], None]
DEFAULT_BATCH = 256


@dataclass
class EvalOutcome:
    summary: RunSummary
    resumed: bool
    already_finished: bool
    warnings: list[str] = field(default_factory=list)
    adaptations: dict[str, dict[str, Any]] = field(default_factory=dict)  # attack -> EOT draws / BPDA used
    checks: list[CheckResult] = field(default_factory=list)


# jobs (run by an executor on a plan) ----------------------------------------------------------
def evaluate_shard(plan: EvalPlan, indices: list[int]) -> tuple[list[tuple[int, int, int]], list[dict[str, Any]]]:
    """One batch: clean predictions, then per eps each attack on the samples no earlier attack broke."""
    idx = torch.tensor(indices, dtype=torch.int64)
    x, y = plan.batch(idx)
    plan.reseed("batch")
    clean_pred = plan.model.predict(x)
    correct = clean_pred == y
    outcomes = robust_ensemble([(a.label, a.attack, a.view) for a in plan.attacks], x, y, plan.threats, idx.to(x.device), plan.seed, correct)
    return batch_rows(indices, y.tolist(), clean_pred.tolist(), correct.tolist(), outcomes)


def batch_rows(
    indices: list[int], labels: list[int], clean: list[int], correct: list[bool], outcomes: list[Any]
) -> tuple[list[tuple[int, int, int]], list[dict[str, Any]]]:
    """The store's rows for one batch: a clean row per sample, a row per (sample, attack, eps)."""
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        for attempt in outcome.attempts:
            seen: dict[int, tuple[int, bool, float, int, float | None]] = {}
            result = attempt.result
            if result is not None:
                min_dist = result.min_distance.tolist() if result.min_distance is not None else [None] * len(attempt.target)
                for pos, pred, ok, dist, steps, md in zip(
                    attempt.target.tolist(), result.adv_pred.tolist(), result.success.tolist(), result.distance.tolist(), result.steps.tolist(), min_dist
                ):
                    seen[pos] = (pred, ok, dist, steps, md if md is None or md != float("inf") else None)
            for pos, sample in enumerate(indices):
                base = {"sample_idx": sample, "attack": attempt.label, "eps": outcome.threat.eps, "label": labels[pos], "clean_pred": clean[pos]}
                if pos in seen:
                    pred, ok, dist, steps, md = seen[pos]
                    rows.append({**base, "status": "attacked", "adv_pred": pred, "success": int(ok), "distance": dist, "steps": steps,
                                 "seconds": attempt.seconds_per_sample, "min_distance": md})
                elif not correct[pos]:
                    rows.append({**base, "status": "misclassified", "adv_pred": clean[pos], "success": 1, "distance": 0.0, "steps": 0, "seconds": 0.0})
                else:
                    rows.append({**base, "status": "skipped", "adv_pred": None, "success": None, "distance": None, "steps": None, "seconds": None})
    return list(zip(indices, labels, clean)), rows


def masking_checks(plan: EvalPlan, indices: list[int]) -> CheckReport:
    """The gradient-masking checks on `indices` at the plan's largest eps."""
    x, y = plan.batch(torch.tensor(indices, dtype=torch.int64))
    plan.reseed("checks")
    threat = max(plan.threats, key=lambda t: t.eps)
    return gradient_masking_checks(plan.model, x, y, threat, plan.eot, plan.bpda, derive_seed(plan.seed, "checks"))


def worker_plan(spec: EvalSpec, runtime: Runtime, sha256: str) -> EvalPlan:
    """The plan a Ray worker builds once: on its own device, the driver's checkpoint or an error."""
    plan = resolve(spec, runtime, worker_device(runtime.device))
    same_checkpoint(plan.sha256, sha256, spec.model)
    return plan


# the run ----------------------------------------------------------------------------------------
def run_eval(spec: EvalSpec, runtime: Runtime = Runtime(), progress: ProgressFn | None = None) -> EvalOutcome:
    """Evaluate the model `spec` names; with `runtime.ray` the batches run on Ray workers and this
    process only validates, bookkeeps and writes."""
    if runtime.ray is not None:
        require(runtime.ray, runtime.device)
        plan = resolve(spec, runtime, torch.device("cpu"))  # the driver only validates; workers attack on their own devices
    else:
        plan = resolve(spec, runtime)
    return evaluate_plan(plan, runtime, progress)


def evaluate_plan(plan: EvalPlan, runtime: Runtime = Runtime(), progress: ProgressFn | None = None) -> EvalOutcome:
    """Run `plan`: checks on a subset, then the still-robust ensemble batch by batch, each batch
    committed to the store as it finishes; an identical unfinished run is resumed."""
    if runtime.ray is not None and plan.spec is None:
        raise UsageError("--ray shards runs of named models; a plan built from objects runs locally")
    device_label = "ray" if runtime.ray is not None else str(plan.device)
    payload = plan.payload()
    stored_config = {**payload, "attack_names": [a.label for a in plan.attacks], "eval_config": spec_dict(plan.spec) if plan.spec else {},
                     "paper": plan.paper(), **plan.extra_config}
    meta = run_meta(plan.name, plan.dataset, len(plan.indices), plan.seed, plan.indices_hash, plan.sha256, device_label)
    adaptations = plan.adaptations
    with Store(runtime.db) as store:
        ledger = RunLedger.open(store, plan.key, "eval", runtime.fresh, device_label, meta, stored_config)
        if ledger.finished:
            record = store.get_run(ledger.run_id)
            stored = [CheckResult(**c) for c in ((record.summary or {}).get("check_results") or [])]
            return EvalOutcome(summarize(store, ledger.run_id), True, True, record.warnings, adaptations, stored)
        build = functools.partial(worker_plan, plan.spec, portable(runtime), plan.sha256) if plan.spec is not None else None
        executor = executor_for(runtime, plan, build)  # type: ignore[arg-type]
        reports: list[CheckReport] = []
        if plan.checks:
            executor.map(masking_checks, [plan.indices[: plan.check_n].tolist()], reports.append)
        done = ledger.done_samples()
        todo = plan.indices[~torch.isin(plan.indices, torch.tensor(sorted(done), dtype=torch.int64))]
        batch = runtime.batch(DEFAULT_BATCH)
        shards = [todo[s : s + batch].tolist() for s in range(0, len(todo), batch)]
        finished = len(done)
        if progress:
            progress(finished, len(plan.indices))

        def commit(result: tuple[list[tuple[int, int, int]], list[dict[str, Any]]]) -> None:
            nonlocal finished
            ledger.commit_batch(*result)
            finished += len(result[0])
            if progress:
                progress(finished, len(plan.indices))

        ledger.restart_clock()
        executor.map(evaluate_shard, shards, commit)
        if hasattr(executor, "close"):
            executor.close()
        summary = summarize(store, ledger.run_id)
        report = reports[0] if reports else None
        checks = report.results if report else []
        warnings = report.warnings if report else []
        ledger.finish({**summary.to_dict(), "checks": report.numbers if report else None, "check_results": [c.to_dict() for c in checks]}, warnings)
    return EvalOutcome(summary, ledger.resumed, False, warnings, adaptations, checks)

