"""`advbench eval` as a library function."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

import advbench
from advbench.attacks import build_attack
from advbench.attacks.base import Attack, AttackResult, MinimumNormAttack
from advbench.attacks.checks import CheckReport, gradient_masking_checks
from advbench.attacks.transfer import Transfer
from advbench.core.device import resolve_device
from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed
from advbench.core.threat import ThreatModel, parse_norm
from advbench.data.registry import check_dataset_spec, dataset_labels, load_dataset
from advbench.data.subset import indices_hash, select_indices
from advbench.engine.provenance import git_commit, library_versions
from advbench.models.card import load_model
from advbench.models.wrapper import RobustModel
from advbench.store import DEFAULT_DB, RunSummary, Store, summarize


@dataclass(frozen=True)
class EvalConfig:
    model: str
    attacks: tuple[str, ...] = ("pgd",)
    eps: tuple[float, ...] = (0.1,)
    norm: str = "linf"
    dataset: str = "fashion-mnist"
    split: str = "test"
    n: int | None = 1000
    seed: int = 0
    balanced: bool = False
    batch_size: int = 256
    device: str = "auto"
    db: str = str(DEFAULT_DB)
    data_dir: str | None = None
    zoo: str | None = None
    fresh: bool = False  # start a new run even if an identical one exists
    weights: str | None = None  # state dict of an external model (model = file:PATH.py:NAME)
    surrogate: str | None = None  # the model transfer attacks craft their examples on
    eot: int | None = None  # EOT draws per gradient; None: 20 for models random at inference, else 1
    bpda: bool = True  # route gradients through the model's BPDA surrogates
    checks: bool = True  # gradient-masking checks on a subset
    check_n: int = 100


@dataclass
class EvalOutcome:
    summary: RunSummary
    resumed: bool
    already_finished: bool
    warnings: list[str] = field(default_factory=list)
    adaptations: dict[str, dict[str, Any]] = field(default_factory=dict)  # attack -> EOT draws / BPDA used


ProgressFn = Callable[[int, int], None]


def _prepare_attacks(config: EvalConfig) -> tuple[list[ThreatModel], list[tuple[str, Attack, dict[str, Any]]]]:
    """Validate every name and number before anything heavy is loaded."""
    if not config.attacks:
        raise UsageError("give at least one --attack")
    if not config.eps:
        raise UsageError("give at least one --eps")
    if config.batch_size < 1:
        raise UsageError("--batch-size must be positive")
    if config.n is not None and config.n <= 0:
        raise UsageError(f"--n must be positive, got {config.n}")
    check_dataset_spec(config.dataset)
    norm = parse_norm(config.norm)
    threats = [ThreatModel(norm, float(e)) for e in config.eps]
    if config.eot is not None and config.eot < 1:
        raise UsageError(f"--eot must be at least 1, got {config.eot}")
    attacks = [build_attack(a, config.surrogate) for a in config.attacks]
    names = [a[0] for a in attacks]
    if len(set(names)) != len(names):
        raise UsageError("each attack (with its options) may appear once per run")
    for name, attack, _ in attacks:
        if norm.value not in attack.norms:
            raise UsageError(f"attack {name!r} does not support the {norm.value} norm")
    return threats, attacks


def _config_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _load_attacked_model(
    config: EvalConfig, attacks: list[tuple[str, Attack, dict[str, Any]]], device: torch.device
) -> tuple[RobustModel, Any, dict[str, dict[str, Any]]]:
    """The model (and transfer surrogates) on `device`, with every attack adapted to it."""
    model, card = load_model(config.model, config.dataset, config.zoo, config.weights)
    model.to(device)
    for _, attack, _ in attacks:
        if isinstance(attack, Transfer):
            attack.surrogate_model = load_model(attack.config.surrogate, config.dataset, config.zoo)[0].to(device)
    # What adaptive evaluation uses against this model (EOT draws, BPDA) is part of the run's identity.
    adaptations = {name: attack.adapt(model, config.eot, config.bpda) for name, attack, _ in attacks}
    return model, card, adaptations


def run_eval(config: EvalConfig, progress: ProgressFn | None = None, ray: str | None = None) -> EvalOutcome:
    """Evaluate clean and robust accuracy; every batch is committed to the store as it finishes.

    `ray`: a Ray address (`local`, `auto`, HOST:PORT); the batches then run as Ray tasks
    (advbench.engine.distributed) and this process only validates, bookkeeps and writes.
    """
    threats, attacks = _prepare_attacks(config)
    if ray is None:
        device = resolve_device(config.device)
    else:
        from advbench.engine import distributed

        distributed.require(ray, config.device)
        device = torch.device("cpu")  # the driver only validates; the workers attack on their own devices
    model, card, adaptations = _load_attacked_model(config, attacks, device)

    labels = dataset_labels(config.dataset, config.split, config.data_dir)
    indices = select_indices(labels, config.n, config.seed, config.balanced)
    idx_hash = indices_hash(indices)
    model.check_inputs(load_dataset(config.dataset, config.split, config.data_dir, indices[:1]).images)
    payload = {
        "model": config.model,
        "checkpoint_sha256": card.sha256,
        "dataset": config.dataset,
        "split": config.split,
        "indices_hash": idx_hash,
        "norm": threats[0].norm.value,
        "eps": [t.eps for t in threats],
        "attacks": [{"name": n, "config": c} for n, _, c in attacks],
        "adaptations": adaptations,
        "seed": config.seed,
    }
    key = _config_key(payload)
    # The paper's own numbers travel with the run, so reports can show them without loading models.
    paper = {k: card.paper_facts.get(k) for k in ("paper", "section", "paper_name", "dataset", "threat_model", "reported")} if card.paper_facts else {}
    stored_config = {**payload, "attack_names": [n for n, _, _ in attacks], "eval_config": asdict(config), "paper": paper}

    with Store(config.db) as store:
        run_id = None if config.fresh else store.find_run(key)
        resumed = run_id is not None
        if run_id is not None and store.get_run(run_id).status == "finished":
            summary = summarize(store, run_id)
            return EvalOutcome(summary, True, True, store.get_run(run_id).warnings, adaptations)
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]
            meta = {
                "model": config.model, "dataset": config.dataset, "n_samples": len(indices), "seed": config.seed,
                "indices_hash": idx_hash, "checkpoint_sha256": card.sha256, "device": str(device) if ray is None else "ray",
                "package_version": advbench.__version__, "git_commit": git_commit(), "libraries": library_versions(),
            }
            store.create_run(run_id, key, meta, stored_config)
        else:
            store.mark_resumed(run_id, str(device) if ray is None else "ray")

        done = store.done_samples(run_id)
        todo = indices[~torch.isin(indices, torch.tensor(sorted(done), dtype=torch.int64))]
        if progress:
            progress(len(done), len(indices))
        if ray is not None:  # the same batches as Ray tasks; the masking checks run as one more
            checks = distributed.eval_sharded(config, card.sha256, indices, todo, store, run_id, progress, len(done))
        else:
            for start in range(0, len(todo), config.batch_size):
                t0 = time.perf_counter()
                batch_idx = todo[start : start + config.batch_size]
                data = load_dataset(config.dataset, config.split, config.data_dir, batch_idx)
                clean_rows, rows = _evaluate_batch(model, data.images.to(device), data.labels.to(device), batch_idx, threats, attacks, config.seed)
                store.write_batch(run_id, clean_rows, rows)
                store.add_wall_time(run_id, time.perf_counter() - t0)
                if progress:
                    progress(len(done) + start + len(batch_idx), len(indices))
        summary = summarize(store, run_id)
        if ray is None:
            checks = _masking_checks(model, config, indices, threats, device) if config.checks else None
        warnings = checks.warnings if checks else []
        store.finish_run(run_id, {**summary.to_dict(), "checks": checks.numbers if checks else None}, warnings)
    return EvalOutcome(summary, resumed, False, warnings, adaptations)


def _masking_checks(model: RobustModel, config: EvalConfig, indices: torch.Tensor, threats: list[ThreatModel], device: torch.device) -> CheckReport:
    """The gradient-masking checks on the run's first `check_n` samples at its largest eps."""
    subset = indices[: config.check_n]
    data = load_dataset(config.dataset, config.split, config.data_dir, subset)
    threat = max(threats, key=lambda t: t.eps)
    return gradient_masking_checks(model, data.images.to(device), data.labels.to(device), threat, config.eot, config.bpda, derive_seed(config.seed, "checks"))


def _evaluate_batch(
    model: RobustModel,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_idx: torch.Tensor,
    threats: list[ThreatModel],
    attacks: list[tuple[str, Attack, dict[str, Any]]],
    seed: int,
) -> tuple[list[tuple[int, int, int]], list[dict[str, Any]]]:
    """Clean predictions, then per eps each attack on the samples no earlier attack broke."""
    clean_pred = model.predict(x)
    correct = clean_pred == y
    idx_list, y_list, clean_list = batch_idx.tolist(), y.tolist(), clean_pred.tolist()
    correct_list = correct.tolist()  # one device sync, not one per sample
    clean_rows = list(zip(idx_list, y_list, clean_list))
    rows: list[dict[str, Any]] = []
    minimum: dict[str, tuple[AttackResult, float]] = {}
    for name, attack, _ in attacks:
        # A minimum-norm attack runs once per batch; every eps reads its result.
        if isinstance(attack, MinimumNormAttack) and bool(correct.any()):
            target = correct.nonzero().view(-1)
            t0 = time.perf_counter()
            result = attack.minimize(model, x[target], y[target], threats[0].norm, batch_idx[target].to(x.device), derive_seed(seed, name))
            minimum[name] = (_scatter(result, target, x, y), (time.perf_counter() - t0) / len(target))
    for threat in threats:
        still = correct.clone()
        for name, attack, _ in attacks:
            target = still.nonzero().view(-1)
            outcome: dict[int, tuple[int, bool, float, int, float | None]] = {}
            seconds = 0.0
            if len(target):
                t0 = time.perf_counter()
                if name in minimum:
                    full, seconds = minimum[name]
                    result = MinimumNormAttack.at_eps(_take(full, target), x[target], y[target], threat)
                else:
                    result = attack(model, x[target], y[target], threat, batch_idx[target].to(x.device), derive_seed(seed, name, threat.eps))
                    seconds = (time.perf_counter() - t0) / len(target)
                still[target[result.success]] = False
                min_dist = result.min_distance.tolist() if result.min_distance is not None else [None] * len(target)
                for pos, pred, ok, dist, steps, md in zip(
                    target.tolist(), result.adv_pred.tolist(), result.success.tolist(), result.distance.tolist(), result.steps.tolist(), min_dist
                ):
                    outcome[pos] = (pred, ok, dist, steps, md if md is None or md != float("inf") else None)
            for pos, sample in enumerate(idx_list):
                base = {"sample_idx": sample, "attack": name, "eps": threat.eps, "label": y_list[pos], "clean_pred": clean_list[pos]}
                if pos in outcome:
                    pred, ok, dist, steps, md = outcome[pos]
                    rows.append({**base, "status": "attacked", "adv_pred": pred, "success": int(ok), "distance": dist, "steps": steps, "seconds": seconds, "min_distance": md})
                elif not correct_list[pos]:
                    rows.append({**base, "status": "misclassified", "adv_pred": clean_list[pos], "success": 1, "distance": 0.0, "steps": 0, "seconds": 0.0})
                else:
                    rows.append({**base, "status": "skipped", "adv_pred": None, "success": None, "distance": None, "steps": None, "seconds": None})
    return clean_rows, rows


def _scatter(result: AttackResult, target: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> AttackResult:
    """A minimum-norm result on the `target` rows, spread to the whole batch (clean input elsewhere)."""
    n = len(x)
    full_x = x.clone()
    full_x[target] = result.x_adv
    success = torch.zeros(n, dtype=torch.bool, device=x.device)
    success[target] = result.success
    min_distance = torch.full((n,), float("inf"), device=x.device)
    assert result.min_distance is not None
    min_distance[target] = result.min_distance.to(min_distance.dtype)
    steps = torch.zeros(n, dtype=torch.int64, device=x.device)
    steps[target] = result.steps.to(torch.int64)
    adv_pred = y.clone()
    adv_pred[target] = result.adv_pred
    return AttackResult(full_x, success, torch.zeros(n, device=x.device), steps, adv_pred, min_distance)


def _take(result: AttackResult, rows: torch.Tensor) -> AttackResult:
    assert result.min_distance is not None
    return AttackResult(result.x_adv[rows], result.success[rows], result.distance[rows], result.steps[rows], result.adv_pred[rows], result.min_distance[rows])
