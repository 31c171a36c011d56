"""The options every command shares, as typer `Annotated` aliases, and the one place that turns
the runtime options into an `advbench.engine.spec.Runtime`.

A command that runs models takes all of `Device`, `Db`, `Zoo`, `DataDir`, `BatchSize`, `Fresh`
and `Ray` (`eval` and `certify` also `TF32`) and hands them to `runtime(...)`, so none can be
dropped on the way to the library.
Choices (norms, formats) are `Enum`s; a bad choice is a usage error (exit 2) that names the
choices. Nothing here imports torch: `advbench runs` and `advbench leaderboard` start fast.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional, TypeVar

import typer

from advbench.cli.listing import ListFormat
from advbench.core.threat import Norm
from advbench.store import DEFAULT_DB

if TYPE_CHECKING:
    from advbench.engine.spec import Runtime

RAY_HELP = (
    "shard over Ray tasks: local (start Ray on this machine), auto (join the running cluster) or HOST:PORT; "
    "needs the optional Ray extra, see docs/scale.md"
)

E = TypeVar("E", bound=Enum)


def choice(kind: type[E], what: str) -> Callable[[object], E]:
    """A typer parser for an Enum option, case-insensitive: 'L2' -> Norm.L2; anything else is a
    usage error saying `unknown <what> 'x'; use one of: a, b, c`."""

    def parse(value: object) -> E:
        if isinstance(value, kind):
            return value
        text = str(value).strip().lower()
        for member in kind:
            if member.value == text:
                return member
        raise typer.BadParameter(
            f"unknown {what} {value!r}; use one of: {', '.join(m.value for m in kind)}"
        )

    return parse


def metavar(kind: type[Enum]) -> str:
    return "[" + "|".join(m.value for m in kind) + "]"


# ----------------------------------------------------------------------------- runtime: where and how a run executes
Device = Annotated[str, typer.Option(help="auto, cpu or cuda[:N]")]
Db = Annotated[Path, typer.Option(help="result database")]
Zoo = Annotated[Optional[Path], typer.Option(help="extra folder of model cards")]
DataDir = Annotated[Optional[Path], typer.Option(help="folder holding datasets")]
Fresh = Annotated[
    bool, typer.Option("--fresh", help="start a new run even if an identical one exists")
]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume/--no-resume",
        help="continue an identical unfinished run (default); --no-resume is --fresh",
    ),
]
Ray = Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help=RAY_HELP)]
TF32 = Annotated[
    bool,
    typer.Option(
        "--tf32",
        help="allow TF32 matmuls and convolutions on CUDA: faster, about 3 decimal digits; recorded in the run's key (see docs/gpu.md)",
    ),
]
# `--batch-size` is None when not given, so each library function applies its own default (shown here).
EvalBatch = Annotated[
    Optional[int],
    typer.Option(
        help="samples per batch and per commit (default 256; on CUDA as many as memory holds, up to 4096); no result depends on it"
    ),
]
CertifyBatch = Annotated[
    Optional[int],
    typer.Option(
        help="noisy copies per forward pass (default 1000 on the CPU, on CUDA as many as memory holds); no certificate depends on it"
    ),
]
SuiteBatch = Annotated[
    Optional[int],
    typer.Option(
        help="samples per batch in every cell (default: the suite's batch_size, else 256)"
    ),
]


def runtime(
    device: str = "auto",
    db: Path = DEFAULT_DB,
    zoo: Path | None = None,
    data_dir: Path | None = None,
    batch_size: int | None = None,
    fresh: bool = False,
    resume: bool = True,
    ray: str | None = None,
    tf32: bool = False,
) -> Runtime:
    """The `Runtime` of the shared options; `--no-resume` means `--fresh`."""
    from advbench.engine import (
        spec,  # the engine package loads torch: only commands that run models get here
    )

    return spec.Runtime(
        device=device,
        db=db,
        zoo=zoo,
        data_dir=data_dir,
        batch_size=batch_size,
        fresh=fresh or not resume,
        ray=ray,
        tf32=tf32,
    )


def require_db(db: Path) -> Path:
    """Commands that only read results refuse a database that is not there (instead of creating one)."""
    from advbench.core.errors import UsageError

    if not db.is_file():
        raise UsageError(f"no result database at {db}")
    return db


# ----------------------------------------------------------------------------- what is measured
NormOption = Annotated[
    Norm,
    typer.Option(parser=choice(Norm, "norm"), metavar=metavar(Norm), help="linf, l2, l1 or l0"),
]
Model = Annotated[str, typer.Option("--model", "-m", help="registered model name")]
Dataset = Annotated[
    str, typer.Option(help="fashion-mnist, cifar10, cifar100, digits, imagefolder:PATH")
]
Weights = Annotated[
    Optional[Path],
    typer.Option(help="state dict for an external model given as --model file:PATH.py:NAME"),
]
Seed = Annotated[int, typer.Option(min=0, help="seed for the subset and the attacks")]
AsJson = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]


# ----------------------------------------------------------------------------- listings
ListingFormat = Annotated[
    ListFormat,
    typer.Option(
        "--format",
        parser=choice(ListFormat, "format"),
        metavar=metavar(ListFormat),
        help="table (fits the width, never cuts a name or number), json, or names (one per line)",
    ),
]
