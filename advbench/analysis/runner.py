"""Run one analysis by name: load the model and the data subset, compute, write CSV + PNG + JSON.

The JSON record holds the numbers, the summary, the options and the provenance (checkpoint
sha256, subset hash, seed, device, version); files are named MODEL_DATASET_TIMESTAMP.* under
results/analysis/<analysis>/ unless another folder is given. The SQLite store is not touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from advbench.analysis.common import AnalysisResult, timestamp, write_outputs
from advbench.core.device import resolve_device
from advbench.core.errors import UsageError
from advbench.core.paths import output_folder
from advbench.core.provenance import git_commit, library_versions
from advbench.core.registry import Registry
from advbench.core.version import __version__


@dataclass(frozen=True)
class AnalysisRun:
    """Settings every analysis shares: which model, which images, where to write."""

    model: str | None = None
    dataset: str = "fashion-mnist"
    split: str = "test"
    n: int | None = 500
    seed: int = 0
    balanced: bool = False
    batch_size: int = 128
    device: str = "auto"
    zoo: str | None = None
    data_dir: str | None = None
    out: str | None = None  # folder; default results/analysis/<analysis>

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise UsageError(f"--seed must be an integer >= 0, got {self.seed}")


@dataclass
class Context:
    model: Any
    card: Any
    x: torch.Tensor | None
    y: torch.Tensor | None
    indices: torch.Tensor | None
    classes: list[str] | None
    device: torch.device
    run: AnalysisRun

    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels): loaded for every analysis registered with needs_data."""
        if self.x is None or self.y is None:
            raise UsageError("this analysis needs images, and none were loaded")
        return self.x, self.y


@dataclass(frozen=True)
class AnalysisEntry:
    name: str
    description: str
    compute: Callable[..., AnalysisResult]  # (context, **options) -> result
    plot: Callable[[AnalysisResult, Path], None]
    needs_model: bool = True
    needs_data: bool = True


ANALYSES: Registry[AnalysisEntry] = Registry("analysis")


def _register(
    name: str,
    description: str,
    compute: Callable[..., AnalysisResult],
    plot: Callable,
    needs_model: bool = True,
    needs_data: bool = True,
) -> None:
    ANALYSES.add(name, AnalysisEntry(name, description, compute, plot, needs_model, needs_data))


def _psr(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.psr import psr_analysis

    return psr_analysis(
        ctx.model, *ctx.data(), batch_size=ctx.run.batch_size, seed=ctx.run.seed, **o
    )


def _snr(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.snr import snr_analysis

    return snr_analysis(
        ctx.model, *ctx.data(), batch_size=ctx.run.batch_size, seed=ctx.run.seed, **o
    )


def _sparsity(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.sparsity import sparsity_analysis

    return sparsity_analysis(ctx.model, *ctx.data(), batch_size=ctx.run.batch_size, **o)


def _invariance(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.invariance import invariance_analysis

    return invariance_analysis(
        ctx.model, *ctx.data(), batch_size=ctx.run.batch_size, seed=ctx.run.seed, **o
    )


def _noise(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.noise import noise_analysis

    return noise_analysis(
        ctx.model, *ctx.data(), batch_size=ctx.run.batch_size, seed=ctx.run.seed, **o
    )


def _corruptions(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.corruptions import corruption_analysis

    return corruption_analysis(
        ctx.model, *ctx.data(), batch_size=ctx.run.batch_size, seed=ctx.run.seed, **o
    )


def _kernels(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.kernels import kernels_analysis

    return kernels_analysis(ctx.model, ctx.model.input_shape, device=ctx.device, **o)


def _features(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.features import features_analysis

    return features_analysis(seed=ctx.run.seed, **o)


def _deceptive(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.deceptive import deceptive_analysis

    return deceptive_analysis(
        ctx.model,
        *ctx.data(),
        batch_size=ctx.run.batch_size,
        seed=ctx.run.seed,
        class_names=ctx.classes,
        **o,
    )


def _maximize(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.maximize import maximize_analysis

    return maximize_analysis(ctx.model, seed=ctx.run.seed, class_names=ctx.classes, **o)


def _cost(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.cost import cost_analysis

    return cost_analysis(ctx.model.net, ctx.model.input_shape)


def _polarization(ctx: Context, **o: Any) -> AnalysisResult:
    from advbench.analysis.polarization import polarization_analysis

    return polarization_analysis(ctx.model, *ctx.data(), batch_size=ctx.run.batch_size, **o)


def _plot(module: str, fn: str) -> Callable[[AnalysisResult, Path], None]:
    def plot(result: AnalysisResult, path: Path) -> None:
        import importlib

        getattr(importlib.import_module(f"advbench.analysis.{module}"), fn)(result, path)

    return plot


_register(
    "psr",
    "per-layer perturbation-to-signal ratio (L1, L2, Linf; dB) and normalized activation change under an attack",
    _psr,
    _plot("psr", "plot_psr"),
)
_register("snr", "block-input SNR in dB under Gaussian noise", _snr, _plot("snr", "plot_snr"))
_register(
    "sparsity",
    "normalized Hoyer sparsity of activations per layer",
    _sparsity,
    _plot("sparsity", "plot_sparsity"),
)
_register(
    "invariance",
    "share of unchanged predictions under perturbation, per eps",
    _invariance,
    _plot("invariance", "plot_invariance"),
)
_register(
    "noise",
    "accuracy vs Gaussian noise sigma at the input / activations, clean and adversarial images",
    _noise,
    _plot("noise", "plot_noise"),
)
_register(
    "corruptions",
    "CIFAR-10-C-style corruptions at 5 severities: per-type and mean corruption accuracy",
    _corruptions,
    _plot("corruptions", "plot_corruptions"),
)
_register(
    "kernels",
    "first-layer kernels, their FFT, filter sparsity and conv singular values",
    _kernels,
    _plot("kernels", "plot_kernels"),
    needs_data=False,
)
_register(
    "features",
    "Proposition 1 (stride paper): output disturbance vs feature size on random CNNs",
    _features,
    _plot("features", "plot_features"),
    needs_model=False,
    needs_data=False,
)
_register(
    "deceptive",
    "the most deceptive adversarial example per class",
    _deceptive,
    _plot("deceptive", "plot_deceptive"),
)
_register(
    "maximize",
    "class activation maximization from noise",
    _maximize,
    _plot("maximize", "plot_maximize"),
    needs_data=False,
)
_register(
    "polarization",
    "polarizing front end: histogram of its outputs, share within eps of the thresholds, pixels per filter",
    _polarization,
    _plot("polarization", "plot_polarization"),
)
_register(
    "cost",
    "receptive field per conv layer, parameters, FLOPs and activation memory",
    _cost,
    _plot("cost", "plot_cost"),
    needs_data=False,
)


def load_context(entry: AnalysisEntry, run: AnalysisRun) -> Context:
    from advbench.data.registry import check_dataset_spec, dataset_labels, load_dataset
    from advbench.data.subset import select_indices
    from advbench.models.card import load_model

    device = resolve_device(run.device)
    model = card = x = y = indices = classes = None
    if entry.needs_model:
        if not run.model:
            raise UsageError(f"analyze {entry.name} needs --model")
        check_dataset_spec(run.dataset)
        model, card = load_model(run.model, run.dataset, run.zoo)
        model.to(device)
    if entry.needs_data:
        labels = dataset_labels(run.dataset, run.split, run.data_dir)
        indices = select_indices(labels, run.n, run.seed, run.balanced)
        data = load_dataset(run.dataset, run.split, run.data_dir, indices)
        x, y = data.images.to(device), data.labels.to(device)
        classes = list(data.classes) or None
    elif entry.needs_model:
        classes = _class_names(run)
    return Context(model, card, x, y, indices, classes, device, run)


def _class_names(run: AnalysisRun) -> list[str] | None:
    from advbench.data.registry import load_dataset

    try:
        return (
            list(load_dataset(run.dataset, "test", run.data_dir, torch.arange(1)).classes) or None
        )
    except Exception:  # noqa: BLE001 - names are a nicety; numbers stand in
        return None


def run_analysis(
    name: str, run: AnalysisRun, **options: Any
) -> tuple[AnalysisResult, dict[str, Path]]:
    """Run analysis `name` with its options; returns the result and the written files (csv, png, json)."""
    from advbench.data.subset import indices_hash

    entry = ANALYSES.get(name)
    out_dir = output_folder(
        Path(run.out) if run.out else Path("results") / "analysis" / name, "--out"
    )  # before the model loads: a file in the way is an error now, not after the analysis
    ctx = load_context(entry, run)
    result = entry.compute(ctx, **options)
    record = {
        "analysis": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": run.model if entry.needs_model else None,
        "dataset": run.dataset if entry.needs_model or entry.needs_data else None,
        "checkpoint_sha256": getattr(ctx.card, "sha256", None),
        "split": run.split if entry.needs_data else None,
        "indices_hash": indices_hash(ctx.indices) if ctx.indices is not None else None,
        "n": len(ctx.indices) if ctx.indices is not None else None,
        "seed": run.seed,
        "device": str(ctx.device),
        "advbench_version": __version__,
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "run": asdict(run),
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
    }
    prefix = f"{run.model}_{run.dataset}" if entry.needs_model else "random-cnn"
    paths = write_outputs(result, out_dir, f"{prefix}_{timestamp()}", entry.plot, record)
    return result, paths
