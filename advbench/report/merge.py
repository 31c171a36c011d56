"""One model at one threat model with every stored evaluation merged: what leaderboards and model
reports show.

A model is a checkpoint: its name and the sha256 of its weights. For each (checkpoint, dataset,
norm, eps) every given evaluation at that budget is merged:

- Runs on the same samples (the same subset hash) are merged per sample: a sample counts as
  robust only if every run classified it correctly and no attack of any run broke it, the checks'
  probe attacks included (worst case means worst case).
- Runs on different samples cannot be merged per sample (a union would mix two estimates).
  Each set of samples is merged on its own and the result is the set with the lowest worst case;
  `sample_sets` says how many sets there were, so a reader sees it is the lowest of several.
- A model random at inference whose runs include voted ones (every point judged by a vote of
  fresh draws) is merged from those alone: a run that judged each point by one forward pass
  counts how many noisy passes ran as much as the model, so it would lower the figure by luck.
  `one_pass_runs` names the runs left out.
- Each broken sample is credited to one attack: runs in order of their own worst case (strongest
  first), within a run its attacks in their order, its probes last. `found_by` counts them.
- The verdict is the worst of the merged runs' verdicts (unreliable > escalated > reliable), over
  every set of samples; runs made with the checks off have none, and "" means no run had checks.
- Cost, of the chosen set of samples: forward+backward passes per sample, summed over every merged
  run's attacks at this budget, each stored step (a gradient step or a query) times the EOT draws
  the attack used; the checks' probes store no steps and are not counted. AutoAttack (through
  pyautoattack) reports no steps, so where an attack attacked samples but reported none the cost
  is a lower bound. Seconds per sample: the attacks' stored seconds summed, over n.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from advbench.store import Store
from advbench.store.sqlite import RunRecord

VERDICTS = ("reliable", "escalated", "unreliable")  # better to worse


@dataclass(frozen=True, order=True)
class Threat:
    dataset: str
    norm: str
    eps: float

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.norm} {self.eps:g}"


@dataclass(frozen=True)
class BrokenSample:
    """A sample an attack broke, from the row of the attack it is credited to."""

    sample_idx: int
    label: int
    adv_pred: int | None
    attack: str
    run_id: str
    distance: float | None
    probe: bool  # a check's probe attack (its adversarial is not stored and cannot be re-created)


@dataclass
class ThreatResult:
    model: str
    checkpoint: str  # sha256 of the weights
    threat: Threat
    n: int
    clean: float
    worst_case: float
    found_by: dict[str, int]  # attack -> broken samples credited to it, most first
    verdict: str  # the worst verdict of the merged runs; "" when none ran the checks
    passes_per_sample: float  # forward+backward passes (steps x EOT draws) per sample
    passes_lower_bound: bool  # an attack ran without reporting its steps (AutoAttack)
    seconds_per_sample: float
    run_ids: list[str]  # every run merged at this threat (all sets of samples), newest first
    sample_sets: int  # 1: merged per sample; more: the lowest of that many sets of samples
    autoattack: (
        float | None
    )  # robust accuracy under AutoAttack alone (a run that ran it first), else None
    attacks: list[str] = field(
        default_factory=list
    )  # every merged run's attacks, in order of first use
    probes: list[str] = field(default_factory=list)  # the checks' probe attacks that ran
    per_class: dict[int, list[int]] = field(
        default_factory=dict
    )  # label -> [samples, clean correct, robust]
    broken: list[BrokenSample] = field(default_factory=list)  # of the chosen set of samples
    paper: dict[str, Any] = field(
        default_factory=dict
    )  # the paper facts stored with the newest run
    architecture: str = ""
    date: str = ""  # the newest merged run's
    commit: str = ""
    # Random models judged by votes: the mean over samples of the lowest estimated P(correct) of
    # each sample over every merged run's points (clean included), and the spread of those
    # per-sample estimates (for a t-interval); None where one pass judged.
    expected: float | None = None
    expected_sd: float | None = None
    one_pass_runs: list[str] = field(
        default_factory=list
    )  # a random model's runs judged by one forward pass, left out beside voted ones

    @property
    def attack(self) -> str:
        """The attack credited with the most broken samples ("" when nothing was broken)."""
        return next(iter(self.found_by), "")


def worst_verdict(verdicts: Sequence[str | None]) -> str:
    known = [v for v in verdicts if v in VERDICTS]
    return max(known, key=VERDICTS.index) if known else ""


class RunRows:
    """Each run's clean rows and attack rows, read from the store once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._clean: dict[str, dict[int, tuple[int, int]]] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def votes(self, run_id: str) -> dict[int, tuple[int, int]]:
        """sample -> the clean vote's (correct draws, draws); empty where one pass judged."""
        return self.store.clean_votes(run_id)

    def clean(self, run_id: str) -> dict[int, tuple[int, int]]:
        """sample -> (label, clean prediction)."""
        if run_id not in self._clean:
            self._clean[run_id] = {
                idx: (label, pred) for idx, label, pred in self.store.clean_rows(run_id)
            }
        return self._clean[run_id]

    def at(self, run_id: str, eps: float) -> dict[str, list[dict[str, Any]]]:
        """attack -> its rows at budget `eps`."""
        if run_id not in self._rows:
            self._rows[run_id] = self.store.sample_rows(run_id)
        out: dict[str, list[dict[str, Any]]] = {}
        for row in self._rows[run_id]:
            if math.isclose(row["eps"], eps, rel_tol=1e-9, abs_tol=1e-12):
                out.setdefault(row["attack"], []).append(row)
        return out


@dataclass
class _SampleSet:
    """The runs on one set of samples, merged per sample."""

    runs: list[RunRecord]
    n: int
    correct: set[int]
    labels: dict[int, int]
    broken: dict[int, BrokenSample]
    passes: float
    lower_bound: bool
    seconds: float
    autoattack: float | None
    expected: tuple[float, float] | None = (
        None  # random models: (mean, sd) of per-sample P(correct)
    )

    @property
    def worst_case(self) -> float:
        return (len(self.correct) - len(self.broken)) / self.n if self.n else 0.0


def _attack_order(run: RunRecord) -> list[str]:
    return list(run.config.get("attack_names") or []) + list(run.config.get("probe_names") or [])


def _merge_same_samples(rows: RunRows, eps: float, runs: list[RunRecord]) -> _SampleSet:
    clean = {run.run_id: rows.clean(run.run_id) for run in runs}
    labels = {idx: label for c in clean.values() for idx, (label, _) in c.items()}
    correct = {
        idx for idx in labels if all(c[idx][0] == c[idx][1] for c in clean.values() if idx in c)
    }
    attacked = {run.run_id: rows.at(run.run_id, eps) for run in runs}

    def breaks(run: RunRecord, attack: str) -> list[dict[str, Any]]:
        return [
            r
            for r in attacked[run.run_id].get(attack, [])
            if r["status"] == "attacked" and r["success"] and r["sample_idx"] in correct
        ]

    def own_worst(run: RunRecord) -> float:
        broken = {r["sample_idx"] for a in _attack_order(run) for r in breaks(run, a)}
        return (len(correct) - len(broken)) / len(labels) if labels else 0.0

    broken: dict[int, BrokenSample] = {}
    passes, seconds, lower_bound, autoattack = 0.0, 0.0, False, None
    for run in sorted(runs, key=lambda r: (own_worst(r), r.created)):
        evaluation = set(run.config.get("attack_names") or [])
        for attack in _attack_order(run):
            for r in breaks(run, attack):
                if r["sample_idx"] not in broken:
                    broken[r["sample_idx"]] = BrokenSample(
                        r["sample_idx"],
                        r["label"],
                        r["adv_pred"],
                        attack,
                        run.run_id,
                        r["distance"],
                        attack not in evaluation,
                    )
        adaptations = run.config.get("adaptations") or {}
        for attack in evaluation:
            done = [r for r in attacked[run.run_id].get(attack, []) if r["status"] == "attacked"]
            steps = [r["steps"] for r in done if r["steps"] is not None]
            # Steps of PGD and APGD count their EOT draws already (`passes_per_step` 1); runs stored
            # before it was recorded count steps x EOT draws.
            per_step = (run.config.get("passes_per_step") or {}).get(attack)
            if per_step is None:
                per_step = (adaptations.get(attack) or {}).get("eot_draws") or 1
            passes += sum(steps) * int(per_step)
            seconds += sum(r["seconds"] or 0.0 for r in done)
            lower_bound |= bool(done) and not any(steps)
        first = (run.config.get("attack_names") or [""])[0]
        if first.startswith("autoattack") and labels:
            alone = (len(correct) - len({r["sample_idx"] for r in breaks(run, first)})) / len(
                labels
            )
            autoattack = alone if autoattack is None else min(autoattack, alone)
    n = len(labels)
    return _SampleSet(
        runs,
        n,
        correct,
        labels,
        broken,
        passes / n if n else 0.0,
        lower_bound,
        seconds / n if n else 0.0,
        autoattack,
        _expected(rows, runs, attacked),
    )


def _worst_p_correct(
    rows: RunRows, runs: list[RunRecord], attacked: dict[str, dict[str, list[dict[str, Any]]]]
) -> dict[int, float]:
    """A random model's per-sample P(correct) at its worst point over runs on the same samples:
    the lowest any vote estimated (clean or attacked); empty where one pass judged."""
    worst: dict[int, float] = {}
    for run in runs:
        for idx, (hits, draws) in rows.votes(run.run_id).items():
            worst[idx] = min(worst.get(idx, 1.0), hits / draws)
        for attack_rows in attacked[run.run_id].values():
            for r in attack_rows:
                if r.get("draws"):
                    p = r["correct_draws"] / r["draws"]
                    worst[r["sample_idx"]] = min(worst.get(r["sample_idx"], 1.0), p)
    return worst


def _expected(
    rows: RunRows, runs: list[RunRecord], attacked: dict[str, dict[str, list[dict[str, Any]]]]
) -> tuple[float, float] | None:
    """A random model's expected accuracy over runs on the same samples: the mean and sd over
    samples of `_worst_p_correct`."""
    values = list(_worst_p_correct(rows, runs, attacked).values())
    if not values:
        return None
    mean = sum(values) / len(values)
    sd = (
        (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        if len(values) > 1
        else 0.0
    )
    return mean, sd


@dataclass(frozen=True)
class SampleOutcomes:
    """One set of samples at one budget, every given run on it merged per sample (as a leaderboard
    row merges them): which samples are robust (classified correctly and broken by no attack),
    and a random model's P(correct) at each sample's worst point (empty where one pass judged)."""

    indices_hash: str
    run_ids: tuple[str, ...]
    robust: dict[int, bool]
    p_correct: dict[int, float]


def sample_outcomes(rows: RunRows, runs: Sequence[RunRecord], eps: float) -> list[SampleOutcomes]:
    """Per-sample outcomes at budget `eps`, one entry per set of samples among `runs`."""
    by_samples: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_samples.setdefault(run.indices_hash, []).append(run)
    out = []
    for indices_hash, same in by_samples.items():
        merged = _merge_same_samples(rows, eps, same)
        attacked = {run.run_id: rows.at(run.run_id, eps) for run in same}
        out.append(
            SampleOutcomes(
                indices_hash,
                tuple(r.run_id for r in same),
                {i: i in merged.correct and i not in merged.broken for i in merged.labels},
                _worst_p_correct(rows, same, attacked),
            )
        )
    return out


def merge_threat(
    rows: RunRows, model: str, checkpoint: str, threat: Threat, runs: list[RunRecord]
) -> ThreatResult:
    """Every run of one checkpoint at one threat, merged as the module docstring says."""
    voted = [r for r in runs if r.config.get("vote")]
    one_pass = [r.run_id for r in runs if not r.config.get("vote")] if voted else []
    runs = voted or runs
    by_samples: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_samples.setdefault(run.indices_hash, []).append(run)
    sets = [_merge_same_samples(rows, threat.eps, rs) for rs in by_samples.values()]
    chosen = min(sets, key=lambda s: (s.worst_case, -s.n))
    newest = sorted(runs, key=lambda r: r.created, reverse=True)
    found = Counter(b.attack for b in chosen.broken.values())
    per_class: dict[int, list[int]] = {}
    for idx, label in sorted(chosen.labels.items()):
        counts = per_class.setdefault(label, [0, 0, 0])
        counts[0] += 1
        counts[1] += idx in chosen.correct
        counts[2] += idx in chosen.correct and idx not in chosen.broken
    autoattacks = [s.autoattack for s in sets if s.autoattack is not None]
    return ThreatResult(
        model=model,
        checkpoint=checkpoint,
        threat=threat,
        n=chosen.n,
        clean=len(chosen.correct) / chosen.n if chosen.n else 0.0,
        worst_case=chosen.worst_case,
        found_by=dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))),
        verdict=worst_verdict([r.config.get("verdict") for r in runs]),
        passes_per_sample=chosen.passes,
        passes_lower_bound=chosen.lower_bound,
        seconds_per_sample=chosen.seconds,
        run_ids=[r.run_id for r in newest],
        sample_sets=len(sets),
        autoattack=min(autoattacks) if autoattacks else None,
        per_class=per_class,
        attacks=list(dict.fromkeys(a for r in runs for a in r.config.get("attack_names") or [])),
        probes=list(dict.fromkeys(a for r in runs for a in r.config.get("probe_names") or [])),
        broken=sorted(chosen.broken.values(), key=lambda b: b.sample_idx),
        paper=newest[0].config.get("paper") or {},
        architecture=next(
            (r.config["architecture"] for r in newest if r.config.get("architecture")), ""
        ),
        date=newest[0].created[:10],
        commit=(newest[0].git_commit or "")[:10],
        expected=chosen.expected[0] if chosen.expected else None,
        expected_sd=chosen.expected[1] if chosen.expected else None,
        one_pass_runs=one_pass,
    )


def merge_notes(sample_sets: int, one_pass_runs: Sequence[str]) -> list[str]:
    """What a reader of a merged row must know about the runs behind it, in short phrases."""
    notes = []
    if sample_sets > 1:
        notes.append(f"runs on {sample_sets} different sample sets: the lowest set's numbers")
    if one_pass_runs:
        notes.append(
            f"{len(one_pass_runs)} run(s) judged by one forward pass left out: votes judged the rest"
        )
    return notes


def merge_runs(
    store: Store, runs: Sequence[RunRecord], rows: RunRows | None = None
) -> list[ThreatResult]:
    """Every (checkpoint, dataset, norm, eps) the evaluations among `runs` measured, merged; sorted
    by threat, then model. Certifications and other kinds of runs are ignored."""
    groups: dict[tuple[str, str, Threat], list[RunRecord]] = {}
    for run in runs:
        if run.kind != "eval":
            continue
        for e in run.config.get("eps", []):
            groups.setdefault(
                (
                    run.model,
                    run.checkpoint_sha256,
                    Threat(run.dataset, run.config["norm"], float(e)),
                ),
                [],
            ).append(run)
    rows = rows or RunRows(store)
    results = [
        merge_threat(rows, model, checkpoint, threat, rs)
        for (model, checkpoint, threat), rs in groups.items()
    ]
    return sorted(results, key=lambda r: (r.threat, r.model, r.checkpoint))
