"""The documentation site's wiring (`make docs`; `make test` runs `mkdocs build --strict` itself):
the CLI reference is generated from the typer app, every page is in the navigation, and the docs
tools are the `docs` extra that set-up installs."""

from __future__ import annotations

import re

import yaml
from conftest import REPO, load_script

from advbench.cli.app import app


def nav_pages(nav: list) -> set[str]:
    pages: set[str] = set()
    for item in nav:
        for value in item.values() if isinstance(item, dict) else [item]:
            pages |= nav_pages(value) if isinstance(value, list) else {value}
    return pages


def test_cli_reference_is_generated_from_the_typer_app() -> None:
    hooks = load_script("mkdocs_hooks")
    page = (REPO / "docs" / "reference" / "cli.md").read_text()
    assert hooks.MARKER in page and "--model" not in page  # nothing typed by hand
    rendered = hooks.on_page_markdown(page, page=None)
    assert hooks.MARKER not in rendered
    commands = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    for name in commands:
        assert f"### `advbench {name}`" in rendered, name
    assert rendered.count("\n# ") == 0 and rendered.startswith("# Command line")  # one title
    assert "--eps" in rendered and "--strict" in rendered  # options with their help


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    pages = {p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")}
    assert pages == nav_pages(config["nav"])
    assert config["strict"] is True


def test_docs_tools_are_an_extra_that_setup_installs() -> None:
    names = re.search(r"^docs = \[(.*)\]", (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert "mkdocs" in names and "mkdocs-material" in names and "mkdocstrings[python]" in names
    assert ",docs]" in (REPO / "scripts" / "setup.sh").read_text()
    makefile = (REPO / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    docs_recipe = makefile.split("\ndocs:", 1)[1].split("\n\n", 1)[0]
    for recipe in (test_recipe, docs_recipe):
        assert "mkdocs build --strict" in recipe and "--quiet" not in recipe  # --quiet hides the warnings and passes
    assert "site/" in (REPO / ".gitignore").read_text().split()
