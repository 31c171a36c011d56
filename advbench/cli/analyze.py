"""`advbench analyze ...`: the papers' diagnostics (advbench.analysis), each writing CSV + PNG + JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from advbench.cli import analyze_model, options, render
from advbench.cli.analyze_common import (
    AN,
    AAttack,
    ABatch,
    ABudget,
    ADataset,
    ALayers,
    AModel,
    ANorm,
    AOut,
    ASeed,
    ASigmas,
    run_analysis,
)
from advbench.core.errors import UsageError, require_positive

app = typer.Typer(
    no_args_is_help=True,
    help="The papers' diagnostics; each writes CSV + PNG + a JSON record under results/analysis/NAME/.",
)


@app.command("layers")
def analyze_layers(
    model: AModel,
    code: Annotated[str, typer.Option("--partial", help="A1N2, N1A2, A2N1 or N2A1")] = "A1N2",
    cutoff: Annotated[
        list[str],
        typer.Option("--cutoff", help="module name ending the earlier layers (repeatable)"),
    ] = [],
    eps: Annotated[
        float, typer.Option(help="Linf budget for training and the PGD evaluation")
    ] = 0.1,
    dataset: ADataset = "fashion-mnist",
    n: AN = 500,
    seed: Annotated[
        int, typer.Option(min=0, help="seed for the subset, the training and the PGD evaluation")
    ] = 0,
    device: options.Device = "auto",
    data_dir: options.DataDir = None,
    out: AOut = None,
    set_options: Annotated[
        Optional[list[str]], typer.Option("--set", help="training option KEY=VALUE")
    ] = None,
) -> None:
    """Partial adversarial training swept over cutoffs: clean/PGD accuracy and adversarial loss per cutoff."""
    from advbench.analysis import layers
    from advbench.core.device import resolve_device
    from advbench.train import config as train_config

    if not cutoff:
        raise UsageError(
            "give at least one --cutoff (a module name, see the model's named_modules())"
        )
    result, paths = layers.layer_sweep(
        model,
        code,
        cutoff,
        Path(out or "results/analysis/layers"),
        resolve_device(device),
        dataset,
        n,
        eps,
        seed=seed,
        data_dir=str(data_dir) if data_dir else None,
        **train_config.parse_options(set_options or []),
    )
    render.show(
        render.table(
            f"layers: {model} {code}",
            result.columns,
            [[c, *[f"{v:.4f}" for v in rest]] for c, *rest in result.rows],
        )
    )
    render.console.print(f"wrote {', '.join(str(p) for p in paths.values())}")


@app.command("psr")
def analyze_psr(
    model: AModel,
    attack: AAttack = "pgd",
    norm: ANorm = "linf",
    eps: ABudget = 0.1,
    layers: ALayers = "conv",
    dataset: ADataset = "fashion-mnist",
    n: AN = 200,
    seed: ASeed = 0,
    batch_size: ABatch = 128,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    out: AOut = None,
) -> None:
    """Per-layer perturbation-to-signal ratio (L1, L2, Linf; dB) and normalized activation change under an attack."""
    run_analysis(
        "psr",
        model,
        dataset,
        n,
        seed,
        batch_size,
        device,
        zoo,
        out,
        data_dir,
        attack=attack,
        norm=norm,
        eps=eps,
        layers=layers,
    )


@app.command("snr")
def analyze_snr(
    model: AModel,
    sigma: ASigmas = [0.1],
    layers: ALayers = "block",
    clip: Annotated[
        bool, typer.Option("--clip/--no-clip", help="clip noisy images to [0,1]")
    ] = True,
    dataset: ADataset = "fashion-mnist",
    n: AN = 500,
    seed: ASeed = 0,
    batch_size: ABatch = 128,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    out: AOut = None,
) -> None:
    """Block-input SNR in dB under Gaussian noise (dissertation eq. 5.6)."""
    for value in sigma:  # the SNR of no noise is infinite, of negative noise meaningless
        require_positive("analyze snr", sigma=value)
    run_analysis(
        "snr",
        model,
        dataset,
        n,
        seed,
        batch_size,
        device,
        zoo,
        out,
        data_dir,
        sigmas=tuple(sigma),
        layers=layers,
        clip=clip,
    )


@app.command("sparsity")
def analyze_sparsity(
    model: AModel,
    layers: ALayers = "block",
    dataset: ADataset = "fashion-mnist",
    n: AN = 500,
    seed: ASeed = 0,
    batch_size: ABatch = 128,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    out: AOut = None,
) -> None:
    """Normalized Hoyer sparsity of each layer's activations (0 = one-hot, 1 = constant)."""
    run_analysis(
        "sparsity", model, dataset, n, seed, batch_size, device, zoo, out, data_dir, layers=layers
    )


@app.command("polarization")
def analyze_polarization(
    model: AModel,
    eps: Annotated[
        float, typer.Option(help="Linf budget: outputs within eps of a threshold can flip")
    ] = 0.1,
    bins: Annotated[int, typer.Option(help="histogram bins over [-1, 1]")] = 80,
    dataset: ADataset = "fashion-mnist",
    n: AN = 500,
    seed: ASeed = 0,
    batch_size: ABatch = 128,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    out: AOut = None,
) -> None:
    """How polarized a polarizing front end is (dissertation Fig. 4.4): its output histogram and the share an eps-attack can flip."""
    run_analysis(
        "polarization",
        model,
        dataset,
        n,
        seed,
        batch_size,
        device,
        zoo,
        out,
        data_dir,
        eps=eps,
        bins=bins,
    )


@app.command("invariance")
def analyze_invariance(
    model: AModel,
    eps: Annotated[list[float], typer.Option("--eps", help="budget (repeatable)")] = [
        0.0,
        2 / 255,
        4 / 255,
        6 / 255,
        8 / 255,
        10 / 255,
    ],
    attack: AAttack = "pgd",
    norm: ANorm = "linf",
    target: Annotated[
        str, typer.Option(help="attack the clean prediction or the true label")
    ] = "prediction",
    dataset: ADataset = "fashion-mnist",
    n: AN = 500,
    seed: ASeed = 0,
    batch_size: ABatch = 128,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    out: AOut = None,
) -> None:
    """Share of unchanged predictions (right or wrong) under perturbation, per eps."""
    run_analysis(
        "invariance",
        model,
        dataset,
        n,
        seed,
        batch_size,
        device,
        zoo,
        out,
        data_dir,
        eps=tuple(eps),
        attack=attack,
        norm=norm,
        target=target,
    )


@app.command("noise")
def analyze_noise(
    model: AModel,
    sigma: ASigmas = [0.0, 0.05, 0.1, 0.2, 0.3],
    place: Annotated[
        list[str], typer.Option("--place", help="input, activations or both (repeatable)")
    ] = ["input", "activations", "both"],
    attack: Annotated[
        str,
        typer.Option("--attack", "-a", help="attack for the adversarial images; 'none' skips them"),
    ] = "pgd",
    norm: ANorm = "linf",
    eps: ABudget = 0.1,
    draws: Annotated[int, typer.Option(help="noise draws averaged per image")] = 1,
    dataset: ADataset = "fashion-mnist",
    n: AN = 500,
    seed: ASeed = 0,
    batch_size: ABatch = 128,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    out: AOut = None,
) -> None:
    """Accuracy vs Gaussian noise at inference (input / activations), for clean and adversarial images."""
    run_analysis(
        "noise",
        model,
        dataset,
        n,
        seed,
        batch_size,
        device,
        zoo,
        out,
        data_dir,
        sigmas=tuple(sigma),
        places=tuple(place),
        attack=None if attack.lower() == "none" else attack,
        norm=norm,
        eps=eps,
        draws=draws,
    )


@app.command("corruptions")
def analyze_corruptions(
    model: AModel,
    corruption: Annotated[
        str,
        typer.Option(
            help="all, or comma-separated names or categories (noise, blur, weather, digital)"
        ),
    ] = "all",
    dataset: ADataset = "fashion-mnist",
    n: AN = 500,
    seed: ASeed = 0,
    batch_size: ABatch = 128,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
    out: AOut = None,
) -> None:
    """Accuracy under CIFAR-10-C-style corruptions at 5 severities; per-type and mean corruption accuracy."""
    run_analysis(
        "corruptions",
        model,
        dataset,
        n,
        seed,
        batch_size,
        device,
        zoo,
        out,
        data_dir,
        corruptions=corruption,
    )


for _name, _command in (
    ("kernels", analyze_model.analyze_kernels),
    ("features", analyze_model.analyze_features),
    ("deceptive", analyze_model.analyze_deceptive),
    ("maximize", analyze_model.analyze_maximize),
    ("cost", analyze_model.analyze_cost),
):
    app.command(_name)(_command)
