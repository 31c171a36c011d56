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
from advbench.attacks.base import Attack
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


@dataclass
class EvalOutcome:
    summary: RunSummary
    resumed: bool
    already_finished: bool
    warnings: list[str] = field(default_factory=list)


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
    attacks = [build_attack(a) for a in config.attacks]
    names = [a[0] for a in attacks]
    if len(set(names)) != len(names):
        raise UsageError("each attack (with its options) may appear once per run")
    for name, attack, _ in attacks:
        if norm.value not in attack.norms:
            raise UsageError(f"attack {name!r} does not support the {norm.value} norm")
    return threats, attacks


def _config_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def run_eval(config: EvalConfig, progress: ProgressFn | None = None) -> EvalOutcome:
    """Evaluate clean and robust accuracy; every batch is committed to the store as it finishes."""
    threats, attacks = _prepare_attacks(config)
    device = resolve_device(config.device)
    model, card = load_model(config.model, config.dataset, config.zoo)
    model.to(device)

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
        "seed": config.seed,
    }
    key = _config_key(payload)
    stored_config = {**payload, "attack_names": [n for n, _, _ in attacks], "eval_config": asdict(config)}

    with Store(config.db) as store:
        run_id = None if config.fresh else store.find_run(key)
        resumed = run_id is not None
        if run_id is not None and store.get_run(run_id).status == "finished":
            summary = summarize(store, run_id)
            return EvalOutcome(summary, True, True, store.get_run(run_id).warnings)
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]
            meta = {
                "model": config.model, "dataset": config.dataset, "n_samples": len(indices), "seed": config.seed,
                "indices_hash": idx_hash, "checkpoint_sha256": card.sha256, "device": str(device),
                "package_version": advbench.__version__, "git_commit": git_commit(), "libraries": library_versions(),
            }
            store.create_run(run_id, key, meta, stored_config)
        else:
            store.mark_resumed(run_id, str(device))

        done = store.done_samples(run_id)
        todo = indices[~torch.isin(indices, torch.tensor(sorted(done), dtype=torch.int64))]
        if progress:
            progress(len(done), len(indices))
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
        warnings: list[str] = []
        store.finish_run(run_id, summary.to_dict(), warnings)
    return EvalOutcome(summary, resumed, False, warnings)


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
    for threat in threats:
        still = correct.clone()
        for name, attack, _ in attacks:
            target = still.nonzero().view(-1)
            outcome: dict[int, tuple[int, bool, float, int]] = {}
            seconds = 0.0
            if len(target):
                t0 = time.perf_counter()
                result = attack(model, x[target], y[target], threat, batch_idx[target].to(x.device), derive_seed(seed, name, threat.eps))
                seconds = (time.perf_counter() - t0) / len(target)
                still[target[result.success]] = False
                for pos, pred, ok, dist, steps in zip(
                    target.tolist(), result.adv_pred.tolist(), result.success.tolist(), result.distance.tolist(), result.steps.tolist()
                ):
                    outcome[pos] = (pred, ok, dist, steps)
            for pos, sample in enumerate(idx_list):
                base = {"sample_idx": sample, "attack": name, "eps": threat.eps, "label": y_list[pos], "clean_pred": clean_list[pos]}
                if pos in outcome:
                    pred, ok, dist, steps = outcome[pos]
                    rows.append({**base, "status": "attacked", "adv_pred": pred, "success": int(ok), "distance": dist, "steps": steps, "seconds": seconds})
                elif not correct_list[pos]:
                    rows.append({**base, "status": "misclassified", "adv_pred": clean_list[pos], "success": 1, "distance": 0.0, "steps": 0, "seconds": 0.0})
                else:
                    rows.append({**base, "status": "skipped", "adv_pred": None, "success": None, "distance": None, "steps": None, "seconds": None})
    return clean_rows, rows
