"""`advbench eval` as a library function: spec + runtime -> plan -> executor -> ledger -> summary.

`run_eval(spec, runtime)` evaluates a model by name; `evaluate_plan(plan, runtime)` takes any plan,
including `EvalPlan.from_objects(model, x, y)` for a model object and tensors. Every batch is
committed as it finishes, and the same call resumes an interrupted run.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from advbench.attacks.checks import CheckResult
from advbench.attacks.ensemble import robust_ensemble
from advbench.attacks.model_checks import validate_outputs
from advbench.core.errors import UsageError
from advbench.engine.adaptive import CheckOutcome, Escalation, apply, run_checks
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
    verdict: str | None = None  # reliable | escalated | unreliable; None when the checks were off
    escalation: dict[str, Any] | None = None  # what the checks found and what the evaluation changed

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary.to_dict(), "checks": [c.to_dict() for c in self.checks], "escalation": self.escalation,
                "adaptations": self.adaptations, "resumed": self.resumed}


# jobs (run by an executor on a plan) ----------------------------------------------------------
def evaluate_shard(plan: EvalPlan, indices: list[int]) -> tuple[list[tuple[int, int, int]], list[dict[str, Any]]]:
    """One batch: clean predictions, then per eps each attack on the samples no earlier attack broke."""
    idx = torch.tensor(indices, dtype=torch.int64)
    x, y = plan.batch(idx)
    plan.reseed("batch")
    with torch.no_grad():  # every batch's outputs are checked: a NaN model is an error, never an accuracy
        clean_pred = validate_outputs(plan.model, plan.model(x), len(x), plan.num_classes).argmax(1)
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


def checks_job(plan: EvalPlan, indices: list[int]) -> CheckOutcome:
    """The checks on `indices`; the plan they ran on is adapted to what they found."""
    return run_checks(plan, indices)


def worker_plan(spec: EvalSpec, runtime: Runtime, sha256: str, escalation: dict[str, Any] | None = None) -> EvalPlan:
    """The plan a Ray worker builds once: on its own device, the driver's checkpoint or an error,
    adapted as the run's checks decided."""
    plan = resolve(spec, runtime, worker_device(runtime.device))
    same_checkpoint(plan.sha256, sha256, spec.model)
    apply(plan, Escalation.from_dict(escalation))
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
    """Run `plan`: checks on a subset that adapt the evaluation to what they find, then the
    still-robust ensemble batch by batch, each batch committed to the store as it finishes; an
    identical unfinished run is resumed with the adaptation stored at its start."""
    if runtime.ray is not None and plan.spec is None:
        raise UsageError("--ray shards runs of named models; a plan built from objects runs locally")
    device_label = "ray" if runtime.ray is not None else str(plan.device)
    key = plan.key  # the identity of what was asked; what the checks change is stored with the run
    meta = run_meta(plan.name, plan.dataset, len(plan.indices), plan.seed, plan.indices_hash, plan.sha256, device_label)
    build = functools.partial(worker_plan, plan.spec, portable(runtime), plan.sha256) if plan.spec is not None else None
    checked: list[CheckOutcome] = []

    def new_run_config() -> dict[str, Any]:
        started = time.perf_counter()
        if plan.checks:
            # Locally the checks adapt `plan` itself; a Ray worker adapts its own, so apply here too.
            checker = executor_for(runtime, plan, build)  # type: ignore[arg-type]
            try:
                checker.map(checks_job, [plan.indices[: plan.check_n].tolist()], checked.append)
            finally:
                if hasattr(checker, "close"):
                    checker.close()
            if runtime.ray is not None:
                apply(plan, checked[0].escalation)
        outcome = checked[0] if checked else None
        probes = list(outcome.report.probes) if outcome else []
        return {
            **plan.payload(), "attack_names": [a.label for a in plan.attacks], "probe_names": probes, "adaptations": plan.adaptations,
            "eval_config": spec_dict(plan.spec) if plan.spec else {}, "paper": plan.paper(),
            "architecture": type(plan.model.net).__name__, **plan.extra_config,  # for reports; not part of the key
            "escalation": outcome.escalation.to_dict() if outcome else None, "verdict": outcome.verdict if outcome else None,
            "check_results": [c.to_dict() for c in outcome.results] if outcome else [],
            "check_numbers": outcome.report.numbers if outcome else None,
            "rechecks": [c.to_dict() for c in outcome.rechecks] if outcome else [],
            # The checks are part of the evaluation's cost: counted in the run's wall time too.
            "checks_seconds": time.perf_counter() - started if outcome else 0.0,
        }

    with Store(runtime.db) as store:
        ledger = RunLedger.open(store, key, "eval", runtime.fresh, device_label, meta, new_run_config)
        config = ledger.config()
        stored_checks = [CheckResult(**c) for c in config.get("check_results") or []]
        if ledger.finished:
            record = store.get_run(ledger.run_id)
            return EvalOutcome(summarize(store, ledger.run_id), True, True, record.warnings, config["adaptations"], stored_checks,
                               config.get("verdict"), config.get("escalation"))
        escalation = Escalation.from_dict(config.get("escalation"))
        if checked:
            ledger.store.write_batch(ledger.run_id, [], checked[0].probe_rows(max(t.eps for t in plan.threats)))
            ledger.store.add_wall_time(ledger.run_id, config["checks_seconds"])
        elif ledger.resumed:
            apply(plan, escalation)  # the adaptation decided when the run started
        if build is not None:
            build = functools.partial(build, escalation=escalation.to_dict())
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
        executor = executor_for(runtime, plan, build)  # type: ignore[arg-type]
        executor.map(evaluate_shard, shards, commit)
        if hasattr(executor, "close"):
            executor.close()
        summary = summarize(store, ledger.run_id)
        warnings = [c.why for c in stored_checks if not c.passed]
        rechecks = config.get("rechecks") or []
        ledger.finish({**summary.to_dict(), "checks": config.get("check_numbers"),
                       "check_results": [c.to_dict() for c in stored_checks], "rechecks": rechecks, "verdict": config.get("verdict")}, warnings)
    return EvalOutcome(summary, ledger.resumed, False, warnings, config["adaptations"], stored_checks, config.get("verdict"), config.get("escalation"))
