"""`advbench analyze ...`: the papers' diagnostics (advbench.analysis), each writing CSV + PNG + JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from advbench.cli import options, render
from advbench.core.errors import UsageError

app = typer.Typer(no_args_is_help=True, help="The papers' diagnostics; each writes CSV + PNG + a JSON record under results/analysis/NAME/.")

AModel = options.Model
ADataset = Annotated[str, typer.Option(help="dataset of the checkpoint and the images")]
AN = Annotated[int, typer.Option("--n", help="number of test images (0 = all)")]
ASeed = Annotated[int, typer.Option(help="seed for the subset, attacks and noise")]
ABatch = Annotated[int, typer.Option(help="samples per batch")]
AOut = Annotated[Optional[Path], typer.Option(help="output folder (default results/analysis/NAME)")]
AAttack = Annotated[str, typer.Option("--attack", "-a", help="attack spec, e.g. pgd:steps=50")]
ANorm = Annotated[str, typer.Option(help="linf, l2 or l1")]
ALayers = Annotated[str, typer.Option(help="conv, block, all, or comma-separated patterns over module names")]
ABudget = Annotated[float, typer.Option(help="budget")]
ASigmas = Annotated[list[float], typer.Option("--sigma", help="noise std (repeatable)")]


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _analyze(name: str, model: str | None, dataset: str, n: int, seed: int, batch_size: int, device: str, zoo: Path | None,
             out: Path | None, data_dir: Path | None = None, **analysis_options: object) -> None:
    """Run one analysis through `advbench.analysis.runner` and print its table and the files written."""
    from advbench.analysis import runner

    run = runner.AnalysisRun(model=model, dataset=dataset, n=None if n == 0 else n, seed=seed, batch_size=batch_size, device=device,
                             zoo=str(zoo) if zoo else None, data_dir=str(data_dir) if data_dir else None, out=str(out) if out else None)
    result, paths = runner.run_analysis(name, run, **analysis_options)
    summary = ", ".join(f"{k} {_fmt(v)}" for k, v in result.summary.items() if not isinstance(v, dict))
    render.console.print(render.table(f"{name}: {model or 'random CNNs'}", result.columns, [[_fmt(v) for v in row] for row in result.rows], caption=summary or None))
    render.console.print(f"wrote {', '.join(str(p) for p in paths.values())}")


@app.command("layers")
def analyze_layers(
    model: AModel,
    code: Annotated[str, typer.Option("--partial", help="A1N2, N1A2, A2N1 or N2A1")] = "A1N2",
    cutoff: Annotated[list[str], typer.Option("--cutoff", help="module name ending the earlier layers (repeatable)")] = [],
    eps: Annotated[float, typer.Option(help="Linf budget for training and the PGD evaluation")] = 0.1,
    dataset: ADataset = "fashion-mnist", n: AN = 500, seed: Annotated[int, typer.Option(help="seed for the subset, the training and the PGD evaluation")] = 0,
    device: options.Device = "auto", data_dir: options.DataDir = None, out: AOut = None,
    set_options: Annotated[Optional[list[str]], typer.Option("--set", help="training option KEY=VALUE")] = None,
) -> None:
    """Partial adversarial training swept over cutoffs: clean/PGD accuracy and adversarial loss per cutoff."""
    from advbench.analysis import layers
    from advbench.core.device import resolve_device
    from advbench.train import config as train_config

    if not cutoff:
        raise UsageError("give at least one --cutoff (a module name, see the model's named_modules())")
    result, paths = layers.layer_sweep(model, code, cutoff, Path(out or "results/analysis/layers"), resolve_device(device), dataset, n, eps,
                                       seed=seed, data_dir=str(data_dir) if data_dir else None, **train_config.parse_options(set_options or []))
    render.console.print(render.table(f"layers: {model} {code}", result.columns, [[c, *[f"{v:.4f}" for v in rest]] for c, *rest in result.rows]))
    render.console.print(f"wrote {', '.join(str(p) for p in paths.values())}")


@app.command("psr")
def analyze_psr(model: AModel, attack: AAttack = "pgd", norm: ANorm = "linf", eps: ABudget = 0.1, layers: ALayers = "conv",
                dataset: ADataset = "fashion-mnist", n: AN = 200, seed: ASeed = 0, batch_size: ABatch = 128, device: options.Device = "auto",
                zoo: options.Zoo = None, data_dir: options.DataDir = None, out: AOut = None) -> None:
    """Per-layer perturbation-to-signal ratio (L1, L2, Linf; dB) and normalized activation change under an attack."""
    _analyze("psr", model, dataset, n, seed, batch_size, device, zoo, out, data_dir, attack=attack, norm=norm, eps=eps, layers=layers)


@app.command("snr")
def analyze_snr(model: AModel, sigma: ASigmas = [0.1], layers: ALayers = "block",
                clip: Annotated[bool, typer.Option("--clip/--no-clip", help="clip noisy images to [0,1]")] = True,
                dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: options.Device = "auto",
                zoo: options.Zoo = None, data_dir: options.DataDir = None, out: AOut = None) -> None:
    """Block-input SNR in dB under Gaussian noise (dissertation eq. 5.6)."""
    _analyze("snr", model, dataset, n, seed, batch_size, device, zoo, out, data_dir, sigmas=tuple(sigma), layers=layers, clip=clip)


@app.command("sparsity")
def analyze_sparsity(model: AModel, layers: ALayers = "block", dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0,
                     batch_size: ABatch = 128, device: options.Device = "auto", zoo: options.Zoo = None, data_dir: options.DataDir = None,
                     out: AOut = None) -> None:
    """Normalized Hoyer sparsity of each layer's activations (0 = one-hot, 1 = constant)."""
    _analyze("sparsity", model, dataset, n, seed, batch_size, device, zoo, out, data_dir, layers=layers)


@app.command("polarization")
def analyze_polarization(model: AModel, eps: Annotated[float, typer.Option(help="Linf budget: outputs within eps of a threshold can flip")] = 0.1,
                         bins: Annotated[int, typer.Option(help="histogram bins over [-1, 1]")] = 80, dataset: ADataset = "fashion-mnist", n: AN = 500,
                         seed: ASeed = 0, batch_size: ABatch = 128, device: options.Device = "auto", zoo: options.Zoo = None,
                         data_dir: options.DataDir = None, out: AOut = None) -> None:
    """How polarized a polarizing front end is (dissertation Fig. 4.4): its output histogram and the share an eps-attack can flip."""
    _analyze("polarization", model, dataset, n, seed, batch_size, device, zoo, out, data_dir, eps=eps, bins=bins)


@app.command("invariance")
def analyze_invariance(model: AModel, eps: Annotated[list[float], typer.Option("--eps", help="budget (repeatable)")] = [0.0, 2 / 255, 4 / 255, 6 / 255, 8 / 255, 10 / 255],
                       attack: AAttack = "pgd", norm: ANorm = "linf",
                       target: Annotated[str, typer.Option(help="attack the clean prediction or the true label")] = "prediction",
                       dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: options.Device = "auto",
                       zoo: options.Zoo = None, data_dir: options.DataDir = None, out: AOut = None) -> None:
    """Share of unchanged predictions (right or wrong) under perturbation, per eps."""
    _analyze("invariance", model, dataset, n, seed, batch_size, device, zoo, out, data_dir, eps=tuple(eps), attack=attack, norm=norm, target=target)


@app.command("noise")
def analyze_noise(model: AModel, sigma: ASigmas = [0.0, 0.05, 0.1, 0.2, 0.3],
                  place: Annotated[list[str], typer.Option("--place", help="input, activations or both (repeatable)")] = ["input", "activations", "both"],
                  attack: Annotated[str, typer.Option("--attack", "-a", help="attack for the adversarial images; 'none' skips them")] = "pgd",
                  norm: ANorm = "linf", eps: ABudget = 0.1, draws: Annotated[int, typer.Option(help="noise draws averaged per image")] = 1,
                  dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: options.Device = "auto",
                  zoo: options.Zoo = None, data_dir: options.DataDir = None, out: AOut = None) -> None:
    """Accuracy vs Gaussian noise at inference (input / activations), for clean and adversarial images."""
    _analyze("noise", model, dataset, n, seed, batch_size, device, zoo, out, data_dir, sigmas=tuple(sigma), places=tuple(place),
             attack=None if attack.lower() == "none" else attack, norm=norm, eps=eps, draws=draws)


@app.command("corruptions")
def analyze_corruptions(model: AModel, corruption: Annotated[str, typer.Option(help="all, or comma-separated names or categories (noise, blur, weather, digital)")] = "all",
                        dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: options.Device = "auto",
                        zoo: options.Zoo = None, data_dir: options.DataDir = None, out: AOut = None) -> None:
    """Accuracy under CIFAR-10-C-style corruptions at 5 severities; per-type and mean corruption accuracy."""
    _analyze("corruptions", model, dataset, n, seed, batch_size, device, zoo, out, data_dir, corruptions=corruption)


@app.command("kernels")
def analyze_kernels(model: AModel, fft_size: Annotated[int, typer.Option(help="FFT size of the kernel spectra")] = 16,
                    dataset: ADataset = "fashion-mnist", device: options.Device = "auto", zoo: options.Zoo = None, out: AOut = None) -> None:
    """First-layer kernels and their FFT, filter sparsity ratio and conv singular values."""
    _analyze("kernels", model, dataset, 1, 0, 1, device, zoo, out, fft_size=fft_size)


@app.command("features")
def analyze_features(size: Annotated[list[int], typer.Option("--size", help="feature size H = W (repeatable)")] = [8, 16, 24, 32],
                     channels: Annotated[str, typer.Option(help="conv output channels, comma-separated")] = "3,16,32,64",
                     init: Annotated[list[str], typer.Option("--init", help="normal, uniform, xavier_normal, xavier_uniform, kaiming_normal (repeatable)")] = ["normal", "uniform", "xavier_normal", "xavier_uniform", "kaiming_normal"],
                     amplitude: Annotated[float, typer.Option(help="input noise U[-a, a]")] = 0.1,
                     perturbations: Annotated[int, typer.Option(help="noise draws per network and size")] = 200,
                     seed: ASeed = 0, out: AOut = None) -> None:
    """Proposition 1 (stride paper): output disturbance vs feature size on random CNNs, average vs max pooling."""
    try:
        chans = tuple(int(c) for c in channels.split(","))
    except ValueError:
        raise UsageError(f"--channels {channels!r}: write whole numbers separated by commas, e.g. 3,16,32,64") from None
    _analyze("features", None, "fashion-mnist", 1, seed, 100, "cpu", None, out, sizes=tuple(size), channels=chans, inits=tuple(init),
             amplitude=amplitude, perturbations=perturbations)


@app.command("deceptive")
def analyze_deceptive(model: AModel, attack: AAttack = "fgsm", norm: ANorm = "linf", eps: ABudget = 0.1,
                      dataset: ADataset = "fashion-mnist", n: AN = 500, seed: ASeed = 0, batch_size: ABatch = 128, device: options.Device = "auto",
                      zoo: options.Zoo = None, data_dir: options.DataDir = None, out: AOut = None) -> None:
    """The most deceptive adversarial example per class (highest confidence in a wrong class)."""
    _analyze("deceptive", model, dataset, n, seed, batch_size, device, zoo, out, data_dir, attack=attack, norm=norm, eps=eps)


@app.command("maximize")
def analyze_maximize(model: AModel, steps: Annotated[int, typer.Option(help="gradient ascent steps")] = 200,
                     lr: Annotated[float, typer.Option(help="RMS change per pixel per step")] = 0.01,
                     dataset: ADataset = "fashion-mnist", seed: ASeed = 0, device: options.Device = "auto", zoo: options.Zoo = None,
                     data_dir: Annotated[Optional[Path], typer.Option(help="folder holding datasets (for the class names)")] = None,
                     out: AOut = None) -> None:
    """Class activation maximization from Gaussian noise, one image per class."""
    _analyze("maximize", model, dataset, 1, seed, 1, device, zoo, out, data_dir, steps=steps, lr=lr)


@app.command("cost")
def analyze_cost(model: AModel, dataset: ADataset = "fashion-mnist", zoo: options.Zoo = None, out: AOut = None) -> None:
    """Receptive field per conv layer (with parameters, FLOPs and activation memory) of a checkpoint."""
    _analyze("cost", model, dataset, 1, 0, 1, "cpu", zoo, out)
