"""One model's report, as data: everything `advbench report RUN|MODEL` shows, read from the store.

The target is a model name (all its finished runs: evaluations and certifications) or a stored
run id or unique prefix (that run alone). Per checkpoint and threat model the evaluations are
merged as the leaderboards merge them (`report/merge.py`), with Clopper-Pearson 95% intervals;
the page also gets accuracy-vs-eps curves (the merged worst case wherever a checkpoint was
evaluated at two budgets or more, and every minimum-norm attack's curve from its stored norms),
each evaluation's gradient-masking checks, per-class robust accuracy, certified accuracy vs L2
radius of each certification, and each run's provenance.

The store keeps no adversarial images. `deceptive_picks` chooses the samples worth showing (those
broken with the smallest perturbation); re-creating them means running the stored attack again,
which the report layer never does: the CLI asks the engine (`engine/examples.py`) and hands the
images back as `ExampleImages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from advbench.core.errors import UnknownRunError, UsageError
from advbench.report.curves import minimum_norm_curve
from advbench.report.intervals import clopper_pearson
from advbench.report.merge import RunRows, ThreatResult, merge_runs
from advbench.store import Store
from advbench.store.sqlite import RunRecord

CURVE_POINTS = 21  # budgets of a minimum-norm curve, from 0 to the run's largest eps


@dataclass
class RunChecks:
    """One evaluation's gradient-masking checks as stored with it."""

    run_id: str
    setting: str  # "digits linf 0.02, 0.05"
    verdict: str
    checks: list[dict[str, Any]]  # CheckResult fields: name, passed, value, limit, why, at_least
    rechecks: list[dict[str, Any]]  # the failed checks re-run against the adapted evaluation
    changes: list[str]  # what the evaluation changed because of them


@dataclass
class CertifiedCurve:
    run_id: str
    dataset: str
    sigma: str
    radii: list[float]
    accuracy: list[float]
    abstain: float
    predict_accuracy: float


class Pick(NamedTuple):
    """A broken sample whose adversarial example the report would show."""

    run_id: str
    sample_idx: int
    attack: str
    eps: float


@dataclass
class ExampleImages:
    """A re-created adversarial example (images C x H x W in [0,1], numpy) and its outcome."""

    run_id: str
    sample_idx: int
    attack: str
    norm: str
    eps: float
    label: int
    clean_pred: int
    adv_pred: int
    success: bool
    distance: float
    clean: Any
    adversarial: Any


@dataclass
class ModelReport:
    target: str
    model: str
    runs: list[RunRecord]  # reported, newest first
    results: list[ThreatResult]
    curves: dict[str, list[tuple[str, list[float], list[float]]]] = field(
        default_factory=dict
    )  # norm -> (label, eps, accuracy)
    checks: list[RunChecks] = field(default_factory=list)
    certified: list[CertifiedCurve] = field(default_factory=list)
    unfinished: list[str] = field(
        default_factory=list
    )  # the model's runs left out because they did not finish

    def interval(self, share: float, n: int) -> tuple[float, float]:
        return clopper_pearson(share, n)

    def run(self, run_id: str) -> RunRecord:
        return next(r for r in self.runs if r.run_id == run_id)


def find_runs(store: Store, target: str) -> tuple[str, list[RunRecord], list[str]]:
    """(model, the runs to report, unfinished runs left out) for a model name or a run id (prefix)."""
    everything = store.list_runs(limit=10_000_000)
    mine = [r for r in everything if r.model == target]
    if mine:
        finished = [r for r in mine if r.status == "finished"]
        unfinished = [r.run_id for r in mine if r.status != "finished"]
        if not finished:
            raise UsageError(
                f"model {target!r} has no finished run in {store.path} ({len(unfinished)} unfinished: re-run them to finish)"
            )
        return target, finished, unfinished
    try:
        run = store.get_run(target)
    except UnknownRunError as exc:
        if "ambiguous" in str(exc):
            raise
        raise UnknownRunError(
            f"no model and no run {target!r} in {store.path} (see 'advbench runs')"
        ) from None
    return run.model, [run], []


def _checks(run: RunRecord) -> RunChecks | None:
    if run.kind != "eval" or not (run.config.get("check_results") or run.config.get("verdict")):
        return None
    setting = f"{run.dataset} {run.config.get('norm')} {', '.join(f'{e:g}' for e in run.config.get('eps', []))}"
    return RunChecks(
        run.run_id,
        setting,
        run.config.get("verdict") or "",
        list(run.config.get("check_results") or []),
        list(run.config.get("rechecks") or []),
        list((run.config.get("escalation") or {}).get("changes") or []),
    )


def _certified(run: RunRecord) -> list[CertifiedCurve]:
    if run.kind != "certify" or not run.summary:
        return []
    return [
        CertifiedCurve(
            run.run_id,
            run.dataset,
            sigma,
            list(c["radii"]),
            list(c["certified_accuracy"]),
            c["abstain"],
            c["predict_accuracy"],
        )
        for sigma, c in run.summary["curves"].items()
    ]


def _curves(
    store: Store, runs: list[RunRecord], results: list[ThreatResult]
) -> dict[str, list[tuple[str, list[float], list[float]]]]:
    curves: dict[str, list[tuple[str, list[float], list[float]]]] = {}
    by_setting: dict[tuple[str, str, str], list[ThreatResult]] = {}
    for r in results:
        by_setting.setdefault((r.checkpoint, r.threat.dataset, r.threat.norm), []).append(r)
    for (checkpoint, dataset, norm), rs in sorted(by_setting.items()):
        if len(rs) > 1:
            rs = sorted(rs, key=lambda r: r.threat.eps)
            label = f"worst case, {dataset} ({checkpoint[:8]})"
            curves.setdefault(norm, []).append(
                (label, [r.threat.eps for r in rs], [r.worst_case for r in rs])
            )
    for run in runs:
        top = max((float(e) for e in run.config.get("eps", [])), default=0.0)
        if run.kind != "eval" or top <= 0:
            continue
        grid = [top * i / (CURVE_POINTS - 1) for i in range(CURVE_POINTS)]
        for attack in run.config.get("attack_names") or []:
            points = minimum_norm_curve(store, run.run_id, attack, grid)
            if points:
                label = f"{attack} minimum norms, {run.dataset} (run {run.run_id})"
                curves.setdefault(run.config["norm"], []).append(
                    (label, [e for e, _ in points], [a for _, a in points])
                )
    return curves


def build_model_report(store: Store, target: str) -> ModelReport:
    model, runs, unfinished = find_runs(store, target)
    runs = sorted(runs, key=lambda r: r.created, reverse=True)
    results = merge_runs(store, runs, RunRows(store))
    checks = [c for c in (_checks(r) for r in runs) if c is not None]
    certified = [c for r in runs for c in _certified(r)]
    if not results and not certified:
        raise UsageError(f"{target!r}: no stored evaluation or certification to report")
    return ModelReport(
        target, model, runs, results, _curves(store, runs, results), checks, certified, unfinished
    )


def deceptive_picks(report: ModelReport, per_grid: int) -> list[Pick]:
    """Per checkpoint, dataset and norm, the `per_grid` broken samples with the smallest
    perturbation over every budget (each sample once), from the evaluations' own attacks (a
    check's probe stores no adversarial to re-create)."""
    if per_grid <= 0:
        return []
    grids: dict[tuple[str, str, str], list[tuple[float, float, Pick]]] = {}
    for r in report.results:
        for b in r.broken:
            if not b.probe:
                key = (r.checkpoint, r.threat.dataset, r.threat.norm)
                grids.setdefault(key, []).append(
                    (
                        b.distance if b.distance is not None else float("inf"),
                        r.threat.eps,
                        Pick(b.run_id, b.sample_idx, b.attack, r.threat.eps),
                    )
                )
    picks = []
    for key in sorted(grids):
        seen: set[int] = set()
        for _, _, pick in sorted(grids[key], key=lambda t: (t[0], t[1], t[2].sample_idx)):
            if pick.sample_idx not in seen and len(seen) < per_grid:
                seen.add(pick.sample_idx)
                picks.append(pick)
    return picks
