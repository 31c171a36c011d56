"""mkdocs hooks (mkdocs.yml `hooks:`): the CLI reference is rendered from the typer app at build
time, so it is never written by hand. docs/reference/cli.md holds only a marker that this hook
replaces with typer's own Markdown for `advbench` and every sub-command (typer.cli's generator,
the one behind `typer MODULE utils docs`)."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- cli-reference -->"


def cli_markdown() -> str:
    """Every command's usage, arguments and options, as typer renders them."""
    import click
    import typer.main
    from typer.cli import get_docs_for_click

    from advbench.cli.app import app

    command = typer.main.get_command(app)
    context = click.Context(command, info_name="advbench")
    text = get_docs_for_click(obj=command, ctx=context, name="advbench", title="advbench")
    lines, fenced = [], False
    for line in text.splitlines():
        fenced ^= line.startswith("```")
        # One level down: the page's own title is the only level-1 heading.
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_markdown())
    return markdown
