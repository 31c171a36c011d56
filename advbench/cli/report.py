"""Commands that read stored results: `leaderboard`, `compare`, `report`, `runs`, `show`.

They import neither torch nor the engine, so they start fast; only `report` loads the model (through
the engine) to re-create its adversarial examples, which the store does not keep.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from advbench.cli import listings, options, render
from advbench.cli.listing import ListFormat, print_listing
from advbench.store import DEFAULT_DB


class Format(str, Enum):
    TABLE = "table"
    MD = "md"
    CSV = "csv"
    JSON = "json"
    HTML = "html"
    ROBUSTBENCH = "robustbench"


def leaderboard_cmd(
    dataset: Annotated[Optional[str], typer.Option(help="only runs on this dataset")] = None,
    threat: Annotated[
        Optional[str], typer.Option(help="only this budget, NORM:EPS (e.g. linf:0.1)")
    ] = None,
    radius: Annotated[
        list[float],
        typer.Option("--radius", help="certified accuracy at this L2 radius (repeatable)"),
    ] = [],
    fmt: Annotated[
        Optional[Format],
        typer.Option(
            "--format",
            parser=options.choice(Format, "format"),
            metavar=options.metavar(Format),
            help="table (the default on stdout: the main columns, sized to the terminal), or every column as "
            "md (the default with --out), csv, json, html, or robustbench (one model-info JSON per row, into the --out folder)",
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            help="write to this file instead of stdout (robustbench: the folder, required)"
        ),
    ] = None,
    db: options.Db = DEFAULT_DB,
) -> None:
    """One leaderboard per dataset and budget: a row per model checkpoint, every stored run merged, ranked by the worst case."""
    from advbench.core.errors import UsageError
    from advbench.core.paths import output_file, output_folder
    from advbench.core.threat import parse_threat
    from advbench.report import leaderboard
    from advbench.store import Store

    if fmt is None:
        fmt = Format.TABLE if out is None else Format.MD
    if fmt is Format.ROBUSTBENCH and out is None:
        raise UsageError(
            "--format robustbench writes one JSON file per model: give the folder as --out DIR"
        )
    if fmt is Format.TABLE and out is not None:
        raise UsageError(
            "--format table is for the terminal; with --out give --format md, csv, json or html"
        )
    if out is not None:  # before any work: a folder for robustbench's files, else a file
        (output_folder if fmt is Format.ROBUSTBENCH else output_file)(out, "--out")
    budget = parse_threat(threat) if threat else None
    leaderboard.check_filters(
        budget.eps if budget else None, tuple(radius)
    )  # before the database is opened
    with Store(options.require_db(db)) as store:
        boards = leaderboard.build_leaderboard(
            store,
            dataset,
            budget.norm.value if budget else None,
            budget.eps if budget else None,
            tuple(radius),
        )
    rows = sum(len(b.rows) for b in boards)
    if fmt is Format.ROBUSTBENCH and out is not None:  # (without --out it was refused above)
        from advbench.report.robustbench import write_model_infos

        written = write_model_infos(boards, out)
        render.err_console.print(f"wrote {len(written)} model-info files under {out}")
        return
    if fmt is Format.TABLE:
        from advbench.cli.boards import print_boards

        print_boards(boards, render.console)
        return
    if fmt is Format.HTML:
        from advbench.report.html import render_html

        text = render_html(boards)
    else:
        text = {
            Format.MD: leaderboard.render_markdown,
            Format.CSV: leaderboard.render_csv,
            Format.JSON: leaderboard.render_json,
        }[fmt](boards)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        render.err_console.print(f"wrote {out} ({len(boards)} leaderboards, {rows} rows)")
    else:
        print(text, end="")


def compare_cmd(
    a: Annotated[
        str,
        typer.Argument(
            help="a model name (its stored evaluations merged) or a run id (or unique prefix)"
        ),
    ],
    b: Annotated[str, typer.Argument(help="the other side, the same way")],
    threat: Annotated[
        Optional[str],
        typer.Option(help="the budget, NORM:EPS (e.g. linf:0.1), where the sides share several"),
    ] = None,
    db: options.Db = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Two models or runs on the images both measured: robust accuracy by the exact McNemar test, a random model's expected robust accuracy by a paired t-test."""
    from advbench.core.threat import parse_threat
    from advbench.report.compare import compare_evaluations
    from advbench.store import Store

    require_target(a, "two model names or run ids")
    require_target(b, "two model names or run ids")
    budget = parse_threat(threat) if threat else None
    with Store(options.require_db(db)) as store:
        result = compare_evaluations(
            store, a, b, budget.norm.value if budget else None, budget.eps if budget else None
        )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return
    from advbench.cli.paired import paired_table

    render.show(paired_table(result))


def report_cmd(
    target: Annotated[
        str,
        typer.Argument(
            help="a model name (all its stored runs) or a stored run id (or unique prefix)"
        ),
    ],
    out: Annotated[
        Optional[Path], typer.Option(help="the HTML file to write (default reports/TARGET.html)")
    ] = None,
    examples: Annotated[
        int,
        typer.Option(
            help="adversarial examples per grid, re-created by running the stored attack on them (0: no grid, no model loaded)"
        ),
    ] = 6,
    db: options.Db = DEFAULT_DB,
    device: options.Device = "auto",
    zoo: options.Zoo = None,
    data_dir: options.DataDir = None,
) -> None:
    """One self-contained HTML page for a model: accuracy with intervals, curves, checks, classes, examples, certification, provenance."""
    from advbench.core.errors import AdvbenchError, UsageError
    from advbench.core.paths import output_file
    from advbench.report import model_page, model_report
    from advbench.store import Store

    if examples < 0:
        raise UsageError(f"--examples must be >= 0, got {examples}")
    require_target(target, "a model name or a run id")
    path = output_file(
        out or Path("reports") / (re.sub(r"[^A-Za-z0-9._-]+", "_", target).strip("._") + ".html"),
        "--out",
    )
    with Store(options.require_db(db)) as store:
        report = model_report.build_model_report(store, target)
    picks = model_report.deceptive_picks(report, examples)
    images: list[model_report.ExampleImages] = []
    note = (
        "no example grid (--examples 0)"
        if examples == 0
        else ""
        if picks
        else "no attack of an evaluation broke a sample: no adversarial examples to show"
    )
    if picks:
        from advbench.engine import examples as engine_examples

        try:
            made = engine_examples.recreate_examples(
                picks, options.runtime(device, db, zoo, data_dir)
            )
            images = [model_report.ExampleImages(**example) for example in made]
        except AdvbenchError as exc:  # the page is still worth having; say why the grid is missing
            note = f"adversarial examples not re-created: {exc}"
            render.warnings([note])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_page.render_model_page(report, images, note))
    render.err_console.print(
        f"wrote {path} ({len(report.runs)} runs, {len(report.results)} threat models, {len(images)} examples)"
    )


def require_target(text: str, what: str) -> None:
    """An empty run id or model name is a usage error, never the prefix of every run."""
    if not text.strip():
        from advbench.core.errors import UsageError

        raise UsageError(f"give {what}; `advbench runs` lists the stored runs")


def runs_cmd(
    db: options.Db = DEFAULT_DB,
    limit: Annotated[int, typer.Option(help="newest N runs")] = 50,
    fmt: options.ListingFormat = ListFormat.TABLE,
) -> None:
    """List stored runs, newest first."""
    from advbench.core.errors import UsageError
    from advbench.store import Store

    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")

    with Store(options.require_db(db)) as store:
        runs = store.list_runs(limit)
    print_listing(listings.runs_listing(runs), fmt, render.console)


def show_cmd(
    run: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    db: options.Db = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Print one stored run: its provenance and summary."""
    from advbench.store import Store, summarize

    require_target(run, "a run id (or a unique prefix)")

    with Store(options.require_db(db)) as store:
        record = store.get_run(run)
        if record.kind == "certify":
            from advbench.store import summarize_certificates

            certified = summarize_certificates(store, record.run_id)
            summary, summary_table = certified.to_dict(), render.certify_table(certified)
        else:
            evaluated = summarize(store, record.run_id)
            summary, summary_table = evaluated.to_dict(), render.summary_table(evaluated)
    if as_json:
        print(json.dumps({"run": record.__dict__, "summary": summary}, indent=2, default=str))
        return
    render.show(render.run_info_table(record))
    render.show(summary_table)
