"""`advbench eval` as a library function, top to bottom:

spec -> plan (`resolve`) -> ledger (find, resume or create the run) -> the checked shard
(`adaptive.check_shard`: probes, stages, findings, remedies, verdict; committed with the
escalation it chose) -> the other shards on the escalated plan (an executor, local or Ray) ->
summary from the stored rows.

`run_eval(spec, runtime)` evaluates a model by name; `evaluate_plan(plan, runtime)` takes any plan,
including `EvalPlan.from_objects(model, x, y)` for a model object and tensors. Every batch is
committed as it finishes, and the same call resumes an interrupted run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from advbench.attacks.checks import CheckResult, Escalation
from advbench.engine.adaptive import CheckedShard, check_shard
from advbench.engine.batch import Rows, batch_rows, clean_judgement, run_stages, vote_config
from advbench.engine.eval_batch import auto_eval_batch
from advbench.engine.executors import Executor, executor_for
from advbench.engine.plan import EvalPlan, resolve
from advbench.engine.runs import ProgressFn, RunLedger, Tally, run_meta
from advbench.engine.spec import EvalSpec, Runtime, spec_dict
from advbench.store import RunSummary, Store, summarize


@dataclass
class EvalOutcome:
    """What `run_eval` and `evaluate_plan` return: the stored run's summary, whether it resumed or
    was already finished, what the evaluation adapted, the checks and the verdict."""

    summary: RunSummary
    resumed: bool
    already_finished: bool
    warnings: list[str] = field(default_factory=list)
    adaptations: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # attack -> EOT draws / BPDA used
    checks: list[CheckResult] = field(default_factory=list)
    verdict: str | None = None  # reliable | escalated | unreliable; None when the checks were off
    escalation: dict[str, Any] | None = (
        None  # what the checks found and what the evaluation changed
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "escalation": self.escalation,
            "adaptations": self.adaptations,
            "resumed": self.resumed,
        }


# jobs (run by an executor on a plan) ----------------------------------------------------------
def checks_job(plan: EvalPlan, indices: list[int]) -> CheckedShard:
    """The checked shard (`adaptive.check_shard`) on the worker's plan."""
    return check_shard(plan, indices)[0]


def evaluate_shard(plan: EvalPlan, work: tuple[list[int], dict[str, Any] | None]) -> Rows:
    """One batch on the plan escalated as the run's checks decided: clean predictions, then per
    eps each attack on the samples no earlier attack broke."""
    indices, findings = work
    plan = plan.escalated(Escalation.from_dict(findings))
    idx = torch.tensor(indices, dtype=torch.int64)
    x, y = plan.batch(idx)
    plan.reseed("batch")
    clean = clean_judgement(plan, x, y)
    return batch_rows(indices, y.tolist(), clean, run_stages(plan, x, y, idx, ~clean.wrong))


# the run ----------------------------------------------------------------------------------------
def run_eval(
    spec: EvalSpec, runtime: Runtime = Runtime(), progress: ProgressFn | None = None
) -> EvalOutcome:
    """Evaluate the model `spec` names; with `runtime.ray` the batches run on Ray workers and this
    process only validates, bookkeeps and writes."""
    with executor_for(runtime) as executor:
        return _evaluate(
            resolve(spec, runtime, device=executor.driver_device), runtime, executor, progress
        )


def evaluate_plan(
    plan: EvalPlan, runtime: Runtime = Runtime(), progress: ProgressFn | None = None
) -> EvalOutcome:
    """Run `plan`: the checked shard first (its findings escalate the plan), then the rest batch
    by batch, each committed to the store as it finishes; an identical unfinished run is resumed
    with the escalation it stored."""
    with executor_for(runtime) as executor:
        return _evaluate(plan, runtime, executor, progress)


def run_config(plan: EvalPlan) -> dict[str, Any]:
    """What a new run stores: its identity, and what reports read (not part of the key)."""
    return {
        **plan.payload(),
        "run_key": plan.payload(),
        "attack_names": plan.labels,
        "probe_names": [],
        "adaptations": plan.adaptations,
        "passes_per_step": plan.passes_per_step,
        "eval_config": spec_dict(plan.spec) if plan.spec else {},
        "paper": plan.paper(),
        "architecture": type(plan.model.net).__name__,
        "escalation": None,
        "verdict": None,
        "check_results": [],
        "check_numbers": None,
        "rechecks": [],
        "checks_seconds": 0.0,
        "checked": not plan.checks,
        **vote_config(plan),
    }


def checked_config(shard: CheckedShard, plan: EvalPlan) -> dict[str, Any]:
    """What the checked shard decided, stored with its rows in one transaction."""
    return {
        "attack_names": plan.labels,
        "probe_names": shard.probe_names,
        "adaptations": plan.adaptations,
        "passes_per_step": plan.passes_per_step,
        "escalation": shard.escalation.to_dict(),
        "verdict": shard.verdict,
        "check_results": [c.to_dict() for c in shard.results],
        "check_numbers": shard.numbers,
        "rechecks": [c.to_dict() for c in shard.rechecks],
        "checks_seconds": shard.seconds,
        "checked": True,
        **vote_config(plan),
    }


def _evaluate(
    plan: EvalPlan, runtime: Runtime, executor: Executor, progress: ProgressFn | None
) -> EvalOutcome:
    executor.accepts(plan)
    device_label = executor.label(plan)
    meta = run_meta(
        plan.name,
        plan.dataset,
        len(plan.indices),
        plan.seed,
        plan.indices_hash,
        plan.sha256,
        device_label,
    )
    with Store(runtime.db) as store:
        ledger = RunLedger.open(
            store, plan.key, "eval", runtime.fresh, device_label, meta, lambda: run_config(plan)
        )
        config = ledger.config()
        if ledger.finished:
            return _stored_outcome(store, ledger.run_id, config, True, True)
        tally = Tally(len(plan.indices), len(ledger.done_samples()), progress)

        def commit(rows: Rows, update: dict[str, Any] | None = None) -> None:
            ledger.commit_batch(*rows, config=update)
            tally.add(len(rows[0]))

        ledger.restart_clock()
        if config.get(
            "checked", True
        ):  # runs stored before the checked shard existed ran their checks first
            plan = plan.escalated(Escalation.from_dict(config.get("escalation")))
        else:
            checked: list[CheckedShard] = []
            executor.map(checks_job, plan, [plan.indices[: plan.check_n].tolist()], checked.append)
            plan = plan.escalated(checked[0].escalation)
            commit(checked[0].rows, checked_config(checked[0], plan))
        findings = plan.escalation.to_dict()
        done = ledger.done_samples()
        todo = plan.indices[
            ~torch.isin(plan.indices, torch.tensor(sorted(done), dtype=torch.int64))
        ]
        batch = runtime.batch_size or auto_eval_batch(plan.model, plan.device)
        executor.map(
            evaluate_shard,
            plan,
            [(todo[s : s + batch].tolist(), findings) for s in range(0, len(todo), batch)],
            commit,
        )
        config = ledger.config()
        summary = summarize(store, ledger.run_id)
        stored_checks = [CheckResult(**c) for c in config.get("check_results") or []]
        warnings = [c.why for c in stored_checks if not c.passed]
        ledger.finish(
            {
                **summary.to_dict(),
                "checks": config.get("check_numbers"),
                "check_results": [c.to_dict() for c in stored_checks],
                "rechecks": config.get("rechecks") or [],
                "verdict": config.get("verdict"),
            },
            warnings,
        )
        return _stored_outcome(store, ledger.run_id, config, ledger.resumed, False)


def _stored_outcome(
    store: Store, run_id: str, config: dict[str, Any], resumed: bool, already: bool
) -> EvalOutcome:
    checks = [CheckResult(**c) for c in config.get("check_results") or []]
    return EvalOutcome(
        summarize(store, run_id),
        resumed,
        already,
        store.get_run(run_id).warnings,
        config["adaptations"],
        checks,
        config.get("verdict"),
        config.get("escalation"),
    )
