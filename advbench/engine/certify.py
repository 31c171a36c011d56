"""`advbench certify` as a library function: Cohen et al. CERTIFY/PREDICT per sample and sigma,
every certificate committed as it finishes, runs found again by their configuration and resumed."""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from advbench.certification.cohen import (
    CertifyConfig,
    certify_sample,
    certify_sample_adaptive,
)
from advbench.certification.forward import auto_noise_batch, check_precision_on
from advbench.certification.sequential import SequentialConfig, certify_sequential
from advbench.core.device import resolve_device
from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed
from advbench.data.registry import check_dataset_spec, dataset_labels, load_dataset
from advbench.data.subset import indices_hash, select_indices
from advbench.engine.executors import (
    executor_for,
    portable,
    require,
    same_checkpoint,
    worker_device,
)
from advbench.engine.objects import (
    Loader,
    TensorSource,
    as_robust_model,
    weights_sha256,
)
from advbench.engine.runs import RunLedger, config_key, run_meta
from advbench.engine.spec import CertifySpec, Runtime, spec_dict
from advbench.models.card import load_model
from advbench.models.wrapper import RobustModel
from advbench.store import Store

DEFAULT_NOISE_BATCH = 1000  # noisy copies per forward pass for plans from objects unless given
RAY_CERTIFY_SHARD = 8  # images per Ray shard (each is n0 + n forward passes per sigma)
LOOKS = SequentialConfig()  # the look schedule's defaults, recorded in the key of sequential runs
SEQUENTIAL_SHARD = 64  # images certified together by --sequential (their open ones share forward passes)


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
            # Forward passes (n0 + estimation draws) per image: all alike for CERTIFY, spread out by --sequential.
            "passes_per_image": _spread([r["forward_passes"] for r in mine]),
        }
    passes = sum(r["forward_passes"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    n = len({r["sample_idx"] for r in rows})
    return CertifySummary(run.run_id, run.model, run.dataset, n, sigmas, curves, passes / seconds if seconds else 0.0, passes, run.wall_seconds)


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0.0, "max": 0}
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "mean": sum(ordered) / len(ordered), "max": ordered[-1]}


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    return values[len(values) // 2] if values else None


def certificate_row(model: RobustModel, image: torch.Tensor, label: int, index: int, setting: CertifyConfig, spec: CertifySpec) -> dict[str, Any]:
    """One sample's certificate at one sigma as the store's row, with its forward passes and seconds."""
    t0 = time.perf_counter()
    if spec.adaptive_radius is None:
        cert = certify_sample(model, image, label, index, setting, spec.seed)
        passes = setting.n0 + setting.n
    else:
        cert, passes = certify_sample_adaptive(model, image, label, index, setting, spec.adaptive_radius, spec.seed)
    return {**asdict(cert), "sigma": setting.sigma, "forward_passes": passes, "seconds": time.perf_counter() - t0}


def sequential_rows(model: RobustModel, images: torch.Tensor, labels: list[int], indices: list[int], setting: CertifyConfig, spec: CertifySpec) -> list[dict[str, Any]]:
    """Sequential certificates of several images at one sigma as the store's rows; the group's
    seconds are shared out in proportion to each image's forward passes."""
    config = SequentialConfig(setting.sigma, spec.n0, spec.noise_draws, spec.alpha, spec.radii, spec.resolution, setting.batch_size, precision=spec.precision)
    t0 = time.perf_counter()
    results = certify_sequential(model, images, labels, indices, config, spec.seed)
    seconds, passes = time.perf_counter() - t0, sum(p for _, p in results)
    return [{**asdict(cert), "sigma": setting.sigma, "forward_passes": p, "seconds": seconds * p / passes} for cert, p in results]


@dataclass
class CertifyPlan:
    """A resolved certification: the base model, the images, one Cohen setting per sigma.

    Built from names (`resolve_certify`) or from a model object and tensors (`from_objects`);
    `spec` is what is measured either way (for objects its dataset is the tensors' hash).
    """

    spec: CertifySpec
    model: RobustModel
    sha256: str
    indices: torch.Tensor
    settings: list[CertifyConfig]
    load: Loader
    device: torch.device
    named: bool = True  # the model and data have names a Ray worker can load again

    def payload(self) -> dict[str, Any]:
        s = self.spec
        # The key's field names predate `--n` meaning images everywhere: "n" is Cohen's noise
        # draws, so runs stored before the rename keep their identity and resume.
        return {
            "kind": "certify", "model": s.model, "checkpoint_sha256": self.sha256, "dataset": s.dataset, "split": s.split,
            "indices_hash": indices_hash(self.indices), "sigmas": [c.sigma for c in self.settings], "n0": s.n0, "n": s.noise_draws,
            "alpha": s.alpha, "seed": s.seed, "adaptive_radius": s.adaptive_radius,
            # Fields of later options appear only when set, so runs stored before them keep their key.
            **({"sequential": {"radii": list(s.radii), "resolution": s.resolution, "first_look": LOOKS.first_look, "growth": LOOKS.growth}}
               if s.sequential else {}),
            **({"precision": s.precision} if s.precision != "fp32" else {}),
        }

    @classmethod
    def from_objects(
        cls, model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float] = (0.25,), n0: int = 100,
        noise_draws: int = 100_000, alpha: float = 0.001, seed: int = 0, adaptive_radius: float | None = None,
        indices: torch.Tensor | None = None, name: str | None = None, num_classes: int | None = None,
        mean: Sequence[float] | None = None, std: Sequence[float] | None = None, device: str | torch.device = "auto",
        batch_size: int = DEFAULT_NOISE_BATCH, sequential: bool = False, radii: Sequence[float] = (), resolution: float = 0.01,
        precision: str = "fp32",
    ) -> CertifyPlan:
        """A certification of a model object on images `x` in [0,1] (N x C x H x W) with labels `y`
        (`nn.Module`s are wrapped as `EvalPlan.from_objects` wraps them)."""
        source = TensorSource.of(x, y, indices)
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        check_precision_on(dev, precision)
        wrapped = as_robust_model(model, x, dev, num_classes, mean, std, name)
        spec = CertifySpec(model=name or wrapped.name, sigmas=tuple(sigmas), n0=n0, noise_draws=noise_draws, alpha=alpha,
                           dataset=source.dataset, split="-", n=len(source.indices), seed=seed, adaptive_radius=adaptive_radius,
                           sequential=sequential, radii=tuple(radii), resolution=resolution, precision=precision)
        settings = [CertifyConfig(s, spec.n0, spec.noise_draws, spec.alpha, batch_size, spec.precision) for s in spec.sigmas]
        return cls(spec, wrapped, weights_sha256(wrapped), source.indices, settings, source.loader(), dev, named=False)


def resolve_certify(spec: CertifySpec, runtime: Runtime, device: torch.device | None = None) -> CertifyPlan:
    check_dataset_spec(spec.dataset)
    dev = device if device is not None else resolve_device(runtime.device)
    check_precision_on(dev, spec.precision)
    model, card = load_model(spec.model, spec.dataset, runtime.zoo_str, spec.weights, runtime.data_dir_str)
    model.to(dev)
    # The batch size never changes a certificate's validity, only its noise draws and speed: on a
    # GPU the default is as many noisy copies as memory holds (capped).
    batch = runtime.batch_size or auto_noise_batch(model, tuple(model.input_shape), dev, spec.precision)
    settings = [CertifyConfig(s, spec.n0, spec.noise_draws, spec.alpha, batch, spec.precision) for s in spec.sigmas]
    labels = dataset_labels(spec.dataset, spec.split, runtime.data_dir_str)
    indices = select_indices(labels, spec.n, spec.seed, spec.balanced)
    data_dir = runtime.data_dir_str

    def load(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data = load_dataset(spec.dataset, spec.split, data_dir, idx)
        return data.images, data.labels

    return CertifyPlan(spec, model, card.sha256, indices, settings, load, dev)


def certify_shard(plan: CertifyPlan, work: list[tuple[int, list[float]]]) -> list[dict[str, Any]]:
    """Certificates for a few samples, each at its still-missing sigmas."""
    images, labels = plan.load(torch.tensor([i for i, _ in work], dtype=torch.int64))
    images = images.to(plan.device)
    by_sigma = {c.sigma: c for c in plan.settings}
    plan.model.reseed(derive_seed(plan.spec.seed, "model-noise", "certify"))  # noise layers: per-sample draws in any shard
    if plan.spec.sequential:
        rows = []
        for sigma, setting in by_sigma.items():
            mine = [pos for pos, (_, sigmas) in enumerate(work) if sigma in sigmas]
            if mine:
                rows += sequential_rows(plan.model, images[mine], [int(labels[p]) for p in mine], [work[p][0] for p in mine], setting, plan.spec)
        return rows
    return [
        certificate_row(plan.model, images[pos], int(labels[pos]), index, by_sigma[sigma], plan.spec)
        for pos, (index, sigmas) in enumerate(work) for sigma in sigmas
    ]


def worker_certify_plan(spec: CertifySpec, runtime: Runtime, sha256: str) -> CertifyPlan:
    plan = resolve_certify(spec, runtime, worker_device(runtime.device))
    same_checkpoint(plan.sha256, sha256, spec.model)
    return plan


def run_certify(spec: CertifySpec, runtime: Runtime = Runtime(), progress: Callable[[int, int], None] | None = None) -> CertifySummary:
    """Certify every selected sample at every sigma; resumable per sample. With `runtime.ray`,
    samples are certified by Ray workers and this process only validates, bookkeeps and writes."""
    if runtime.ray is not None:
        require(runtime.ray, runtime.device)
        plan = resolve_certify(spec, runtime, torch.device("cpu"))
    else:
        plan = resolve_certify(spec, runtime)
    return certify_plan(plan, runtime, progress)


def certify_plan(plan: CertifyPlan, runtime: Runtime = Runtime(), progress: Callable[[int, int], None] | None = None) -> CertifySummary:
    """Run `plan` (from names or from objects): each certificate committed as it finishes, an
    identical unfinished run resumed, a finished one returned as stored."""
    if runtime.ray is not None and not plan.named:
        raise UsageError("--ray shards runs of named models; a plan built from objects runs locally")
    spec = plan.spec
    payload = plan.payload()
    device_label = "ray" if runtime.ray is not None else str(plan.device)
    meta = run_meta(spec.model, spec.dataset, len(plan.indices), spec.seed, payload["indices_hash"], plan.sha256, device_label)
    with Store(runtime.db) as store:
        ledger = RunLedger.open(store, config_key(payload), "certify", runtime.fresh, device_label, meta, {**payload, "certify_config": spec_dict(spec)})
        if ledger.finished:
            return summarize_certificates(store, ledger.run_id)
        done = ledger.done_certificates()
        sigmas = [c.sigma for c in plan.settings]
        work = [(index, [s for s in sigmas if (index, s) not in done]) for index in plan.indices.tolist()]
        work = [w for w in work if w[1]]
        # One image's certificate can be minutes of GPU work: locally each is committed alone.
        per_shard = SEQUENTIAL_SHARD if spec.sequential else 1 if runtime.ray is None else RAY_CERTIFY_SHARD
        shards = [work[s : s + per_shard] for s in range(0, len(work), per_shard)]
        total, finished = len(plan.indices) * len(sigmas), len(done)
        if progress:
            progress(finished, total)

        def commit(rows: list[dict[str, Any]]) -> None:
            nonlocal finished
            ledger.commit_certificates(rows)
            finished += len(rows)
            if progress:
                progress(finished, total)

        ledger.restart_clock()
        executor = executor_for(runtime, plan, functools.partial(worker_certify_plan, spec, portable(runtime), plan.sha256))
        executor.map(certify_shard, shards, commit)
        if hasattr(executor, "close"):
            executor.close()
        summary = summarize_certificates(store, ledger.run_id)
        ledger.finish(summary.to_dict(), [])
    return summary
