"""The `advbench` command: the root typer app, which command lives where, and `main()`, which turns
every error into one line on stderr and an exit code (2 for bad input)."""

from __future__ import annotations

import os
import sys
from typing import Protocol

import typer
from rich.markup import escape

from advbench.cli import analyze, catalog, certify, evaluate, render, report, train
from advbench.core.errors import AdvbenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark the adversarial robustness of PyTorch image classifiers.",
)

# In the order `advbench --help` lists them.
app.command("models")(catalog.models_cmd)
app.command("attacks")(catalog.attacks_cmd)
app.command("eval")(evaluate.eval_cmd)
app.command("certify")(certify.certify_cmd)
app.command("curve")(evaluate.curve_cmd)
app.command("leaderboard")(report.leaderboard_cmd)
app.command("compare")(report.compare_cmd)
app.command("report")(report.report_cmd)
app.command("run")(evaluate.run_cmd)
app.command("check")(evaluate.check_cmd)
app.command("runs")(report.runs_cmd)
app.command("show")(report.show_cmd)
app.command("train")(train.train_cmd)
app.command("recipes")(train.recipes_cmd)
app.command("download")(catalog.download_cmd)
app.add_typer(analyze.app, name="analyze")

INTERRUPTED = "interrupted; finished batches are stored, run the same command again to resume"


class ParserError(Protocol):
    """What the parser's exceptions share, whichever click raised them."""

    @property
    def exit_code(self) -> int: ...

    def format_message(self) -> str: ...


def _click_errors() -> tuple[type[ParserError], ...]:
    """The parser's own exceptions: typer >= 0.2x raises its bundled click's, older typer click's."""
    kinds: list[type[ParserError]] = [
        k for k in (getattr(typer, "TyperException", None),) if k is not None
    ]
    try:
        import click

        kinds.append(click.exceptions.ClickException)
    except ImportError:  # typer that bundles click needs no click package
        pass
    return tuple(kinds)


# A path the user gave that is missing, in the way or not theirs: bad input (exit 2). Other OS
# errors (a full disk, an I/O error) are not, and exit 1; both are one line.
PATH_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def os_error_line(exc: OSError) -> str:
    """'cannot use PATH: No such file or directory' (both paths of a rename), or the error's text."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    reason = exc.strerror or type(exc).__name__
    return f"cannot use {' -> '.join(paths)}: {reason}" if paths else f"{reason}: {exc}"


def _fail(message: str, code: int) -> None:
    render.err_console.print(
        f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True
    )  # 'advbench[ray]' is not markup
    sys.exit(code)


def main() -> None:
    """Console entry point: one-line errors, exit codes, no tracebacks unless ADVBENCH_DEBUG=1."""
    try:
        code = app(standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into Exit(130)
            render.err_console.print(INTERRUPTED)
        if isinstance(code, int) and code:  # typer.Exit(n) returns n when not standalone
            sys.exit(code)
    except AdvbenchError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        render.err_console.print(INTERRUPTED)
        sys.exit(130)
    except typer.Abort:
        sys.exit(130)
    except OSError as exc:  # a file or folder the checks where it entered did not catch
        if os.environ.get("ADVBENCH_DEBUG"):
            raise
        _fail(os_error_line(exc), 2 if isinstance(exc, PATH_ERRORS) else 1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("ADVBENCH_DEBUG"):
            raise
        if isinstance(exc, _click_errors()):
            show = getattr(exc, "show", None)
            if (
                type(exc).__name__ == "NoArgsIsHelpError" and show is not None
            ):  # a bare group: its help, not an error
                show()
                sys.exit(0)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _fail(f"{exc.format_message()}{hint}", exc.exit_code)
        render.err_console.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))} (set ADVBENCH_DEBUG=1 for a traceback)",
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
