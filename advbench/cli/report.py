"""Commands that read stored results without running models: `leaderboard`, `runs`, `show`.

They import neither torch nor the engine, so they start fast.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from advbench.cli import options, render
from advbench.cli.listing import ListFormat, print_listing
from advbench.store import DEFAULT_DB


class Format(str, Enum):
    MD = "md"
    CSV = "csv"
    JSON = "json"
    HTML = "html"


def leaderboard_cmd(
    dataset: Annotated[Optional[str], typer.Option(help="only runs on this dataset")] = None,
    threat: Annotated[Optional[str], typer.Option(help="only this budget, NORM:EPS (e.g. linf:0.1)")] = None,
    radius: Annotated[list[float], typer.Option("--radius", help="certified accuracy at this L2 radius (repeatable)")] = [],
    fmt: Annotated[Format, typer.Option("--format", parser=options.choice(Format, "format"), metavar=options.metavar(Format), help="md, csv, json or html")] = Format.MD,
    out: Annotated[Optional[Path], typer.Option(help="write to this file instead of stdout")] = None,
    db: options.Db = DEFAULT_DB,
) -> None:
    """Models ranked by worst-case robust accuracy, from the stored runs."""
    from advbench.core.threat import parse_threat
    from advbench.report import leaderboard
    from advbench.store import Store

    budget = parse_threat(threat) if threat else None
    leaderboard.check_filters(budget.eps if budget else None, tuple(radius))  # before the database is opened
    with Store(options.require_db(db)) as store:
        rows = leaderboard.build_leaderboard(store, dataset, budget.norm.value if budget else None, budget.eps if budget else None, tuple(radius))
        if fmt is Format.HTML:
            from advbench.report.html import render_html

            text = render_html(rows, store)
        else:
            text = {Format.MD: leaderboard.render_markdown, Format.CSV: leaderboard.render_csv, Format.JSON: leaderboard.render_json}[fmt](rows)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        render.err_console.print(f"wrote {out} ({len(rows)} rows)")
    else:
        print(text, end="")


def runs_cmd(
    db: options.Db = DEFAULT_DB,
    limit: Annotated[int, typer.Option(help="newest N runs")] = 50,
    fmt: options.ListingFormat = ListFormat.TABLE,
) -> None:
    """List stored runs, newest first."""
    from advbench.store import Store

    with Store(options.require_db(db)) as store:
        runs = store.list_runs(limit)
    print_listing(render.runs_listing(runs), fmt, render.console)


def show_cmd(
    run: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    db: options.Db = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Print one stored run: its provenance and summary."""
    from advbench.store import Store, summarize

    with Store(options.require_db(db)) as store:
        record = store.get_run(run)
        summary = summarize(store, record.run_id)
    if as_json:
        print(json.dumps({"run": record.__dict__, "summary": summary.to_dict()}, indent=2, default=str))
        return
    render.console.print(render.run_info_table(record))
    render.console.print(render.summary_table(summary))
