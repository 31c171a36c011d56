"""Adversarial examples re-created from stored runs, for reports.

The store keeps each sample's outcome, not its adversarial image. `recreate_examples` runs the
stored attack again on the chosen samples: the run's spec and escalation rebuild its plan (model
hash-checked against the run's), and attacks draw their randomness from the run's seed and each
sample's dataset index, never from the batch, so for a model that is not random at inference the
same sample gives the same adversarial as in the run. Each example says whether it fooled the
model again (`success`); a report shows the ones that did not as not reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import torch

from advbench.attacks.checks import Escalation
from advbench.attacks.ensemble import robust_ensemble
from advbench.core.errors import CheckpointError, UsageError
from advbench.core.threat import ThreatModel
from advbench.engine.plan import EvalPlan, resolve
from advbench.engine.spec import EvalSpec, Runtime
from advbench.store import Store
from advbench.store.sqlite import RunRecord

Pick = tuple[str, int, str, float]  # run id, dataset index, attack label, eps


def plan_of_run(record: RunRecord, runtime: Runtime) -> EvalPlan:
    """The stored evaluation's plan again: its spec, the same checkpoint, its escalation applied."""
    stored = record.config.get("eval_config")
    if not stored:
        raise UsageError(
            f"run {record.run_id} was evaluated from objects, not by name; its attacks cannot be run again from the store"
        )
    # Runs stored by earlier versions kept the runtime options (db, zoo, device, ...) beside the
    # spec; where and how a run executes never changes its results, so those are left out.
    known = {f.name for f in fields(EvalSpec)}
    try:
        spec = EvalSpec(**{k: v for k, v in stored.items() if k in known})
    except TypeError:
        raise UsageError(
            f"run {record.run_id} was stored by another advbench version; its attacks cannot be run again"
        ) from None
    plan = resolve(spec, runtime, Escalation.from_dict(record.config.get("escalation")))
    if plan.sha256 != record.checkpoint_sha256:
        raise CheckpointError(
            f"run {record.run_id}: the checkpoint of {record.model!r} is now sha256 {plan.sha256[:12]}, the run used {record.checkpoint_sha256[:12]}; "
            "give the --zoo it was evaluated with"
        )
    return plan


def _attack(plan: EvalPlan, samples: list[int], label: str, eps: float) -> list[dict[str, Any]]:
    """`label` at `eps` on the dataset indices `samples`, as the run's batch would have run it."""
    planned = next((a for a in plan.attacks if a.label == label), None)
    if planned is None:
        raise UsageError(f"attack {label!r} is not part of the stored evaluation")
    idx = torch.tensor(samples, dtype=torch.int64)
    x, y = plan.batch(idx)
    plan.reseed("batch")
    with torch.no_grad():
        clean_pred = plan.model(x).argmax(1)
    threat = ThreatModel(plan.threats[0].norm, float(eps))
    outcome = robust_ensemble(
        [(planned.label, planned.attack, planned.view)],
        x,
        y,
        [threat],
        idx.to(x.device),
        plan.seed,
        clean_pred == y,
    )[0]
    attempt = outcome.attempts[0]
    where = (
        {pos: row for row, pos in enumerate(attempt.target.tolist())}
        if attempt.result is not None
        else {}
    )
    out = []
    for pos, sample in enumerate(samples):
        row = where.get(pos)
        result = attempt.result
        adversarial = result.x_adv[row] if row is not None and result is not None else x[pos]
        out.append(
            {
                "sample_idx": sample,
                "attack": label,
                "norm": threat.norm.value,
                "eps": float(eps),
                "label": int(y[pos]),
                "clean_pred": int(clean_pred[pos]),
                "adv_pred": int(result.adv_pred[row])
                if row is not None and result is not None
                else int(clean_pred[pos]),
                "success": bool(result.success[row])
                if row is not None and result is not None
                else False,
                "distance": float(threat.distance(x[pos : pos + 1], adversarial.unsqueeze(0))[0]),
                "clean": x[pos].detach().cpu().numpy(),
                "adversarial": adversarial.detach().cpu().numpy(),
            }
        )
    return out


def recreate_examples(picks: Sequence[Pick], runtime: Runtime) -> list[dict[str, Any]]:
    """Each pick (run id, sample, attack, eps) re-created: the images (numpy, C x H x W in [0,1]),
    label, predictions, whether it fooled the model again, its distance; in the picks' order."""
    by_run: dict[str, dict[tuple[str, float], list[int]]] = {}
    for run_id, sample, attack, eps in picks:
        by_run.setdefault(run_id, {}).setdefault((attack, float(eps)), []).append(int(sample))
    made: dict[tuple[str, int, str, float], dict[str, Any]] = {}
    with Store(runtime.db) as store:
        records = {run_id: store.get_run(run_id) for run_id in by_run}
    for run_id, groups in by_run.items():
        record = records[run_id]
        plan = plan_of_run(record, runtime)
        for (attack, eps), samples in groups.items():
            for example in _attack(plan, sorted(set(samples)), attack, eps):
                made[(run_id, example["sample_idx"], attack, eps)] = {"run_id": run_id, **example}
    return [
        made[(run_id, int(sample), attack, float(eps))] for run_id, sample, attack, eps in picks
    ]
