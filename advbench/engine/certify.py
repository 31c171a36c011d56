"""`advbench certify` as a library function: Cohen et al. CERTIFY/PREDICT per sample and sigma,
every certificate committed as it finishes, runs found again by their configuration and resumed."""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
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
from advbench.core.device import device_class, resolve_device, synchronize
from advbench.core.seeding import derive_seed
from advbench.data.registry import check_dataset_spec, dataset_labels, load_dataset
from advbench.data.subset import indices_hash, select_indices
from advbench.engine.executors import (
    Executor,
    executor_for,
    portable,
    same_checkpoint,
    work_class,
    worker_device,
)
from advbench.engine.from_objects import (
    Loader,
    TensorSource,
    as_robust_model,
    weights_sha256,
)
from advbench.engine.model_fit import check_first_image
from advbench.engine.run_key import CertifyRunKey, SequentialLooks
from advbench.engine.runs import ProgressFn, RunLedger, Tally, run_meta
from advbench.engine.spec import CertifySpec, Runtime, spec_dict
from advbench.models.card import load_model
from advbench.models.wrapper import RobustModel
from advbench.store import CertifySummary, Store, summarize_certificates

DEFAULT_NOISE_BATCH = 1000  # noisy copies per forward pass for plans from objects unless given

LOOKS = SequentialConfig()  # the look schedule's defaults, recorded in the key of sequential runs
SEQUENTIAL_SHARD = (
    64  # images certified together by --sequential (their open ones share forward passes)
)


def certificate_row(
    model: RobustModel,
    image: torch.Tensor,
    label: int,
    index: int,
    setting: CertifyConfig,
    spec: CertifySpec,
) -> dict[str, Any]:
    """One sample's certificate at one sigma as the store's row, with its forward passes and seconds."""
    t0 = time.perf_counter()
    if spec.adaptive_radius is None:
        cert = certify_sample(model, image, label, index, setting, spec.seed)
        passes = setting.n0 + setting.n
    else:
        cert, passes = certify_sample_adaptive(
            model, image, label, index, setting, spec.adaptive_radius, spec.seed
        )
    synchronize(image.device)
    return {
        **asdict(cert),
        "sigma": setting.sigma,
        "forward_passes": passes,
        "seconds": time.perf_counter() - t0,
    }


def sequential_rows(
    model: RobustModel,
    images: torch.Tensor,
    labels: list[int],
    indices: list[int],
    setting: CertifyConfig,
    spec: CertifySpec,
) -> list[dict[str, Any]]:
    """Sequential certificates of several images at one sigma as the store's rows; the group's
    seconds are shared out in proportion to each image's forward passes."""
    config = SequentialConfig(
        setting.sigma,
        spec.n0,
        spec.noise_draws,
        spec.alpha,
        spec.radii,
        spec.resolution,
        setting.batch_size,
        precision=spec.precision,
    )
    t0 = time.perf_counter()
    results = certify_sequential(model, images, labels, indices, config, spec.seed)
    synchronize(images.device)
    seconds, passes = time.perf_counter() - t0, sum(p for _, p in results)
    return [
        {
            **asdict(cert),
            "sigma": setting.sigma,
            "forward_passes": p,
            "seconds": seconds * p / passes,
        }
        for cert, p in results
    ]


@dataclass(frozen=True)
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
    rebuild: Callable[[], "CertifyPlan"] | None = (
        None  # the same plan on a Ray worker (named models only)
    )
    tf32: bool = False  # TF32 allowed on CUDA (the determinism policy turns it off otherwise)
    work_device: str = ""  # the device class the rows are computed on; "": the plan's device's

    def __post_init__(self) -> None:
        object.__setattr__(self, "work_device", self.work_device or device_class(self.device))
        object.__setattr__(self, "tf32", self.tf32 and self.work_device == "cuda")

    def run_key(self) -> CertifyRunKey:
        """The run's identity. Its field names predate `--n` meaning images everywhere: "n" is
        Cohen's noise draws, so runs stored before the rename keep their identity and resume."""
        s = self.spec
        return CertifyRunKey(
            model=s.model,
            checkpoint_sha256=self.sha256,
            dataset=s.dataset,
            split=s.split,
            indices_hash=indices_hash(self.indices),
            sigmas=tuple(c.sigma for c in self.settings),
            n0=s.n0,
            n=s.noise_draws,
            alpha=s.alpha,
            seed=s.seed,
            adaptive_radius=s.adaptive_radius,
            sequential=SequentialLooks(s.radii, s.resolution, LOOKS.first_look, LOOKS.growth)
            if s.sequential
            else None,
            precision=s.precision,
            device=self.work_device,
            tf32=self.tf32,
        )

    def payload(self) -> dict[str, Any]:
        return self.run_key().payload()

    @classmethod
    def from_objects(
        cls,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        sigmas: Sequence[float] = (0.25,),
        n0: int = 100,
        noise_draws: int = 100_000,
        alpha: float = 0.001,
        seed: int = 0,
        adaptive_radius: float | None = None,
        indices: torch.Tensor | None = None,
        name: str | None = None,
        num_classes: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device: str | torch.device = "auto",
        batch_size: int = DEFAULT_NOISE_BATCH,
        sequential: bool = False,
        radii: Sequence[float] = (),
        resolution: float = 0.01,
        precision: str = "fp32",
        tf32: bool = False,
    ) -> CertifyPlan:
        """A certification of a model object on images `x` in [0,1] (N x C x H x W) with labels `y`
        (`nn.Module`s are wrapped as `EvalPlan.from_objects` wraps them). The batch size changes
        no certificate; `tf32` allows TF32 on CUDA (recorded in the key)."""
        source = TensorSource.of(x, y, indices)
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        check_precision_on(dev, precision)
        wrapped = as_robust_model(model, x, dev, num_classes, mean, std, name)
        spec = CertifySpec(
            model=name or wrapped.name,
            sigmas=tuple(sigmas),
            n0=n0,
            noise_draws=noise_draws,
            alpha=alpha,
            dataset=source.dataset,
            split="-",
            n=len(source.indices),
            seed=seed,
            adaptive_radius=adaptive_radius,
            sequential=sequential,
            radii=tuple(radii),
            resolution=resolution,
            precision=precision,
        )
        settings = [
            CertifyConfig(s, spec.n0, spec.noise_draws, spec.alpha, batch_size, spec.precision)
            for s in spec.sigmas
        ]
        return cls(
            spec,
            wrapped,
            weights_sha256(wrapped),
            source.indices,
            settings,
            source.loader(),
            dev,
            tf32=tf32,
        )


def resolve_certify(
    spec: CertifySpec, runtime: Runtime, device: torch.device | None = None
) -> CertifyPlan:
    check_dataset_spec(spec.dataset)
    dev = device if device is not None else resolve_device(runtime.device)
    work = work_class(runtime, dev)  # under Ray the workers' device class, not the driver's
    check_precision_on(torch.device(work), spec.precision)
    model, card = load_model(
        spec.model, spec.dataset, runtime.zoo_str, spec.weights, runtime.data_dir_str
    )
    model.to(dev)
    first = load_dataset(spec.dataset, spec.split, runtime.data_dir_str, torch.tensor([0]))
    check_first_image(model, first.images.to(dev), spec.dataset)  # before any run is stored
    # The batch size changes no certificate (each copy's noise is keyed by its draw index), only
    # the speed: on a GPU the default is as many noisy copies as memory holds (capped).
    batch = runtime.batch_size or auto_noise_batch(
        model, tuple(model.input_shape), dev, spec.precision
    )
    settings = [
        CertifyConfig(s, spec.n0, spec.noise_draws, spec.alpha, batch, spec.precision)
        for s in spec.sigmas
    ]
    labels = dataset_labels(spec.dataset, spec.split, runtime.data_dir_str)
    indices = select_indices(labels, spec.n, spec.seed, spec.balanced)
    data_dir = runtime.data_dir_str

    def load(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data = load_dataset(spec.dataset, spec.split, data_dir, idx)
        return data.images, data.labels

    return CertifyPlan(
        spec,
        model,
        card.sha256,
        indices,
        settings,
        load,
        dev,
        functools.partial(worker_certify_plan, spec, portable(runtime), card.sha256),
        tf32=runtime.tf32,
        work_device=work,
    )


def certify_shard(plan: CertifyPlan, work: list[tuple[int, list[float]]]) -> list[dict[str, Any]]:
    """Certificates for a few samples, each at its still-missing sigmas."""
    images, labels = plan.load(torch.tensor([i for i, _ in work], dtype=torch.int64))
    images = images.to(plan.device)
    by_sigma = {c.sigma: c for c in plan.settings}
    plan.model.reseed(
        derive_seed(plan.spec.seed, "model-noise", "certify")
    )  # noise layers: per-sample draws in any shard
    if plan.spec.sequential:
        rows = []
        for sigma, setting in by_sigma.items():
            mine = [pos for pos, (_, sigmas) in enumerate(work) if sigma in sigmas]
            if mine:
                rows += sequential_rows(
                    plan.model,
                    images[mine],
                    [int(labels[p]) for p in mine],
                    [work[p][0] for p in mine],
                    setting,
                    plan.spec,
                )
        return rows
    return [
        certificate_row(
            plan.model, images[pos], int(labels[pos]), index, by_sigma[sigma], plan.spec
        )
        for pos, (index, sigmas) in enumerate(work)
        for sigma in sigmas
    ]


def worker_certify_plan(spec: CertifySpec, runtime: Runtime, sha256: str) -> CertifyPlan:
    """The plan a Ray worker builds once: on its own device, the driver's checkpoint or an error."""
    plan = resolve_certify(spec, runtime, worker_device(runtime.device))
    same_checkpoint(plan.sha256, sha256, spec.model)
    return plan


def run_certify(
    spec: CertifySpec, runtime: Runtime = Runtime(), progress: ProgressFn | None = None
) -> CertifySummary:
    """Certify every selected sample at every sigma; resumable per sample. With `runtime.ray`,
    samples are certified by Ray workers and this process only validates, bookkeeps and writes."""
    with executor_for(runtime) as executor:
        return _certify(
            resolve_certify(spec, runtime, executor.driver_device), runtime, executor, progress
        )


def certify_plan(
    plan: CertifyPlan, runtime: Runtime = Runtime(), progress: ProgressFn | None = None
) -> CertifySummary:
    """Run `plan` (from names or from objects): each certificate committed as it finishes, an
    identical unfinished run resumed, a finished one returned as stored."""
    with executor_for(runtime) as executor:
        return _certify(plan, runtime, executor, progress)


def _certify(
    plan: CertifyPlan, runtime: Runtime, executor: Executor, progress: ProgressFn | None
) -> CertifySummary:
    executor.accepts(plan)
    spec = plan.spec
    payload = plan.payload()
    device_label = executor.label(plan)
    meta = run_meta(
        spec.model,
        spec.dataset,
        len(plan.indices),
        spec.seed,
        payload["indices_hash"],
        plan.sha256,
        device_label,
    )
    with Store(runtime.db) as store:
        ledger = RunLedger.open(
            store,
            plan.run_key().key(),
            "certify",
            runtime.fresh,
            device_label,
            meta,
            {**payload, "run_key": payload, "certify_config": spec_dict(spec)},
        )
        if ledger.finished:
            return summarize_certificates(store, ledger.run_id)
        done = ledger.done_certificates()
        sigmas = [c.sigma for c in plan.settings]
        work = [
            (index, [s for s in sigmas if (index, s) not in done])
            for index in plan.indices.tolist()
        ]
        work = [w for w in work if w[1]]
        # One image's certificate can be minutes of GPU work: locally each is committed alone.
        per_shard = SEQUENTIAL_SHARD if spec.sequential else executor.certify_shard
        shards = [work[s : s + per_shard] for s in range(0, len(work), per_shard)]
        tally = Tally(len(plan.indices) * len(sigmas), len(done), progress)

        def commit(rows: list[dict[str, Any]]) -> None:
            ledger.commit_certificates(rows)
            tally.add(len(rows))

        ledger.restart_clock()
        executor.map(certify_shard, plan, shards, commit)
        summary = summarize_certificates(store, ledger.run_id)
        ledger.finish(summary.to_dict(), [])
    return summary
