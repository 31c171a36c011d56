"""`advbench certify` as a library function: Cohen et al. CERTIFY/PREDICT per sample and sigma,
every certificate committed as it finishes, runs found again by their configuration and resumed."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

import advbench
from advbench.certify.cohen import (
    CertifyConfig,
    certify_sample,
    certify_sample_adaptive,
)
from advbench.core.device import resolve_device
from advbench.core.errors import UsageError
from advbench.data.registry import check_dataset_spec, dataset_labels, load_dataset
from advbench.data.subset import indices_hash, select_indices
from advbench.engine.provenance import git_commit, library_versions
from advbench.models.card import load_model
from advbench.models.wrapper import RobustModel
from advbench.store import DEFAULT_DB, Store


@dataclass(frozen=True)
class CertifyRunConfig:
    model: str
    sigmas: tuple[float, ...] = (0.25,)
    n0: int = 100
    n: int = 100_000
    alpha: float = 0.001
    dataset: str = "fashion-mnist"
    split: str = "test"
    n_samples: int | None = 500
    seed: int = 0
    balanced: bool = False
    batch_size: int = 1000
    device: str = "auto"
    db: str = str(DEFAULT_DB)
    data_dir: str | None = None
    zoo: str | None = None
    fresh: bool = False
    adaptive_radius: float | None = None  # sequential: stop each sample once its decision at this L2 radius is settled


@dataclass
class CertifySummary:
    run_id: str
    model: str
    dataset: str
    n: int
    sigmas: list[float]
    # sigma -> {"radii": [...], "certified_accuracy": [...], "abstain": share, "predict_accuracy": share}
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    forward_passes_per_second: float = 0.0
    forward_passes: int = 0
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RADII = [round(0.05 * i, 2) for i in range(0, 41)]  # 0 .. 2.0, the grid of the KAP paper's Fig. 6


def certified_accuracy(rows: list[dict[str, Any]], radius: float) -> float:
    """Share of samples certified correct at L2 radius >= `radius` (Cohen et al.'s approximate certified accuracy)."""
    if not rows:
        return 0.0
    return sum(1 for r in rows if r["prediction"] == r["label"] and r["radius"] >= radius) / len(rows)


def summarize_certificates(store: Store, run_id: str) -> CertifySummary:
    run = store.get_run(run_id)
    rows = store.certificate_rows(run.run_id)
    sigmas = [float(s) for s in run.config["sigmas"]]
    curves = {}
    for sigma in sigmas:
        mine = [r for r in rows if r["sigma"] == sigma]
        curves[f"{sigma:g}"] = {
            "radii": RADII,
            "certified_accuracy": [certified_accuracy(mine, r) for r in RADII],
            "abstain": sum(1 for r in mine if r["prediction"] < 0) / max(1, len(mine)),
            "predict_accuracy": sum(1 for r in mine if r["predict"] == r["label"]) / max(1, len(mine)),
            "median_radius_correct": _median([r["radius"] for r in mine if r["prediction"] == r["label"]]),
        }
    passes = sum(r["forward_passes"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    n = len({r["sample_idx"] for r in rows})
    return CertifySummary(run.run_id, run.model, run.dataset, n, sigmas, curves, passes / seconds if seconds else 0.0, passes, run.wall_seconds)


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    return values[len(values) // 2] if values else None


def certificate_row(model: RobustModel, image: torch.Tensor, label: int, index: int, setting: CertifyConfig, config: CertifyRunConfig) -> dict[str, Any]:
    """One sample's certificate at one sigma as the store's row, with its forward passes and seconds."""
    t0 = time.perf_counter()
    if config.adaptive_radius is None:
        cert = certify_sample(model, image, label, index, setting, config.seed)
        passes = setting.n0 + setting.n
    else:
        cert, passes = certify_sample_adaptive(model, image, label, index, setting, config.adaptive_radius, config.seed)
    return {**asdict(cert), "sigma": setting.sigma, "forward_passes": passes, "seconds": time.perf_counter() - t0}


def run_certify(config: CertifyRunConfig, progress: Callable[[int, int], None] | None = None, ray: str | None = None) -> CertifySummary:
    """Certify every selected sample at every sigma; resumable per sample.

    `ray`: a Ray address (`local`, `auto`, HOST:PORT); samples are then certified by Ray tasks
    (advbench.engine.distributed) and this process only validates, bookkeeps and writes.
    """
    if not config.sigmas:
        raise UsageError("give at least one --sigma")
    settings = [CertifyConfig(s, config.n0, config.n, config.alpha, config.batch_size) for s in config.sigmas]
    if config.adaptive_radius is not None and not config.adaptive_radius > 0:
        raise UsageError(f"--radius must be positive, got {config.adaptive_radius}")
    if config.n_samples is not None and config.n_samples <= 0:
        raise UsageError(f"--n-samples must be positive, got {config.n_samples}")
    check_dataset_spec(config.dataset)
    if ray is None:
        device = resolve_device(config.device)
    else:
        from advbench.engine import distributed

        distributed.require(ray, config.device)
        device = torch.device("cpu")  # the driver only bookkeeps; the workers certify on their own devices
    model, card = load_model(config.model, config.dataset, config.zoo)
    model.to(device)
    labels = dataset_labels(config.dataset, config.split, config.data_dir)
    indices = select_indices(labels, config.n_samples, config.seed, config.balanced)
    payload = {
        "kind": "certify", "model": config.model, "checkpoint_sha256": card.sha256, "dataset": config.dataset, "split": config.split,
        "indices_hash": indices_hash(indices), "sigmas": [s.sigma for s in settings], "n0": config.n0, "n": config.n, "alpha": config.alpha,
        "seed": config.seed, "adaptive_radius": config.adaptive_radius,
    }
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    with Store(config.db) as store:
        run_id = None if config.fresh else store.find_run(key)
        if run_id is not None and store.get_run(run_id).status == "finished":
            return summarize_certificates(store, run_id)
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]
            meta = {
                "model": config.model, "dataset": config.dataset, "n_samples": len(indices), "seed": config.seed,
                "indices_hash": payload["indices_hash"], "checkpoint_sha256": card.sha256, "device": str(device) if ray is None else "ray",
                "package_version": advbench.__version__, "git_commit": git_commit(), "libraries": library_versions(),
            }
            store.create_run(run_id, key, meta, {**payload, "certify_config": asdict(config)}, kind="certify")
        else:
            store.mark_resumed(run_id, str(device) if ray is None else "ray")
        done = {(r["sample_idx"], r["sigma"]) for r in store.certificate_rows(run_id)}
        total, finished = len(indices) * len(settings), len(done)
        if progress:
            progress(finished, total)
        if ray is not None:
            distributed.certify_sharded(config, card.sha256, indices, [s.sigma for s in settings], done, store, run_id, progress)
        else:
            for start in range(0, len(indices), 64):
                chunk = indices[start : start + 64]
                data = load_dataset(config.dataset, config.split, config.data_dir, chunk)
                images = data.images.to(device)
                for pos, index in enumerate(chunk.tolist()):
                    for setting in settings:
                        if (index, setting.sigma) in done:
                            continue
                        row = certificate_row(model, images[pos], int(data.labels[pos]), index, setting, config)
                        store.write_certificates(run_id, [row])  # one sample's certificate is minutes of GPU work: commit each
                        store.add_wall_time(run_id, row["seconds"])
                        finished += 1
                        if progress:
                            progress(finished, total)
        summary = summarize_certificates(store, run_id)
        store.finish_run(run_id, summary.to_dict(), [])
    return summary
