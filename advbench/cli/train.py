"""`advbench train` (a model's recipe, or partial adversarial training) and `advbench recipes`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from advbench.cli import listings, options, render
from advbench.cli.listing import ListFormat, print_listing
from advbench.core.errors import UsageError
from advbench.core.paths import output_folder


def train_cmd(
    model: options.Model,
    dataset: Annotated[str, typer.Option(help="training dataset")] = "fashion-mnist",
    epochs: Annotated[
        Optional[int], typer.Option(help="epochs (default: the model's CPU recipe)")
    ] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="batch size")] = None,
    lr: Annotated[Optional[float], typer.Option(help="peak learning rate (one-cycle)")] = None,
    width: Annotated[Optional[int], typer.Option(help="base width of the architecture")] = None,
    noise_sigma: Annotated[
        Optional[float],
        typer.Option(help="override the training noise sigma (input and activations)"),
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="seed")] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="output folder (default model_zoo/DATASET)")
    ] = None,
    device: options.Device = "auto",
    data_dir: options.DataDir = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue from the last epoch's training state")
    ] = False,
    max_train: Annotated[
        Optional[int], typer.Option(help="use only the first N training images")
    ] = None,
    smooth_lambda: Annotated[
        Optional[float],
        typer.Option(help="smooth-kernel regularizer weight; negative favours high frequencies"),
    ] = None,
    at_eps: Annotated[Optional[float], typer.Option(help="adversarial training budget")] = None,
    at_norm: Annotated[
        Optional[str], typer.Option(help="adversarial training norm: linf or l2")
    ] = None,
    at_steps: Annotated[
        Optional[int], typer.Option(help="PGD steps per adversarial training batch")
    ] = None,
    set_options: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="any other training option, KEY=VALUE (see `advbench recipes`)"),
    ] = None,
    partial: Annotated[
        Optional[str],
        typer.Option(
            help="partial adversarial training A1N2|N1A2|A2N1|N2A1 (dissertation Ch. 3); needs --cutoff"
        ),
    ] = None,
    cutoff: Annotated[
        Optional[str], typer.Option(help="with --partial: the module that ends the earlier layers")
    ] = None,
) -> None:
    """Train a registered model with its recipe; writes safetensors and a model card."""
    from advbench.core.device import resolve_device
    from advbench.train import config as train_config
    from advbench.train import loop
    from advbench.train import partial as partial_training

    if partial and not cutoff:
        raise UsageError("--partial needs --cutoff MODULE (the last module of the earlier layers)")
    given = dict(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        max_train=max_train,
        smooth_lambda=smooth_lambda,
        at_eps=at_eps,
        at_norm=at_norm,
        at_steps=at_steps,
    )
    overrides = train_config.merge_overrides(
        dataset, given, set_options or [], {"width": width, "noise_sigma": noise_sigma}
    )
    config = train_config.config_for(model, **overrides)
    data = str(data_dir) if data_dir else None
    if partial and cutoff:  # (a partial run without a cutoff was refused above)
        out_dir = output_folder(
            out or Path("results") / "partial" / f"{model}-{partial}-{cutoff}" / dataset, "--out"
        )
        with render.LazyProgress(f"train {model} {partial}") as bar:
            card = partial_training.train_partial(
                partial,
                cutoff,
                config,
                out_dir,
                resolve_device(device),
                data_dir=data,
                resume=resume,
                on_batch=bar.update,
                on_epoch=lambda log: bar.print(render.epoch_line(log)),
            )
        render.console.print(f"wrote {out_dir / card.weights} (stage 1 in {out_dir / 'stage1'})")
        return
    out_dir = output_folder(out or Path("model_zoo") / dataset, "--out")
    with render.LazyProgress(f"train {model}") as bar:
        card = loop.train_model(
            config,
            out_dir,
            resolve_device(device),
            data,
            resume,
            on_batch=bar.update,
            on_epoch=lambda log: bar.print(render.epoch_line(log)),
        )
    render.console.print(
        f"wrote {out_dir / card.weights} (sha256 {card.sha256[:16]}) and its card {out_dir / (card.name + '.yaml')}"
    )


def recipes_cmd(fmt: options.ListingFormat = ListFormat.TABLE) -> None:
    """List the training recipes and the training options they read (json: {"recipes": [...], "options": [...]})."""
    from advbench.train import config as train_config
    from advbench.train.recipes import RECIPES

    recipes = [
        {
            "name": name,
            "adversarial": RECIPES.get(name).adversarial,
            "minimizes": " ".join((RECIPES.get(name).__doc__ or "").split()),
        }
        for name in RECIPES.names()
    ]
    settings = [
        {"option": option, "type": kind, "default": default}
        for option, kind, default in train_config.option_rows()
    ]
    if fmt is ListFormat.JSON:  # two tables: one object holding both lists
        print(json.dumps({"recipes": recipes, "options": settings}, indent=2, default=str))
        return
    print_listing(listings.recipes_listing(recipes), fmt, render.console)
    if fmt is ListFormat.TABLE:
        print_listing(listings.options_listing(settings), fmt, render.console)
