"""What the `advbench analyze` commands share: their option types and the call that runs one
analysis and prints its table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from advbench.cli import options, render

AModel = options.Model
ADataset = Annotated[str, typer.Option(help="dataset of the checkpoint and the images")]
AN = Annotated[int, typer.Option("--n", help="number of test images (0 = all)")]
ASeed = Annotated[int, typer.Option(min=0, help="seed for the subset, attacks and noise")]
ABatch = Annotated[int, typer.Option(help="samples per batch")]
AOut = Annotated[Optional[Path], typer.Option(help="output folder (default results/analysis/NAME)")]
AAttack = Annotated[str, typer.Option("--attack", "-a", help="attack spec, e.g. pgd:steps=50")]
ANorm = Annotated[str, typer.Option(help="linf, l2 or l1")]
ALayers = Annotated[
    str, typer.Option(help="conv, block, all, or comma-separated patterns over module names")
]
ABudget = Annotated[float, typer.Option(help="budget")]
ASigmas = Annotated[list[float], typer.Option("--sigma", help="noise std (repeatable)")]


def fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_analysis(
    name: str,
    model: str | None,
    dataset: str,
    n: int,
    seed: int,
    batch_size: int,
    device: str,
    zoo: Path | None,
    out: Path | None,
    data_dir: Path | None = None,
    **analysis_options: object,
) -> None:
    """Run one analysis through `advbench.analysis.runner` and print its table and the files written."""
    from advbench.analysis import runner

    run = runner.AnalysisRun(
        model=model,
        dataset=dataset,
        n=None if n == 0 else n,
        seed=seed,
        batch_size=batch_size,
        device=device,
        zoo=str(zoo) if zoo else None,
        data_dir=str(data_dir) if data_dir else None,
        out=str(out) if out else None,
    )
    result, paths = runner.run_analysis(name, run, **analysis_options)
    summary = ", ".join(
        f"{k} {fmt(v)}" for k, v in result.summary.items() if not isinstance(v, dict)
    )
    render.show(
        render.table(
            f"{name}: {model or 'random CNNs'}",
            result.columns,
            [[fmt(v) for v in row] for row in result.rows],
            caption=summary or None,
        )
    )
    render.console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
