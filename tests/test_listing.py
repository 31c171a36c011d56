"""Listings that survive a pipe: `models`, `attacks`, `recipes` and `runs` as a table that fits
the width without cutting a name or a number, as JSON, and as one name per line. Each command
runs as a real process with stdout a pipe (not a terminal), as in `advbench models | grep kap`."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from advbench.cli import listings
from advbench.cli.listing import Column, Listing

# What each command lists, and the listing that says how its table shows each field.
LISTINGS = {"models": listings.models_listing, "attacks": listings.attacks_listing, "recipes": listings.recipes_listing, "runs": listings.runs_listing}
NAME_FIELD = {"models": "name", "attacks": "name", "recipes": "name", "runs": "run_id"}


def run(*args: str, columns: int = 80) -> str:
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.run([sys.executable, "-m", "advbench", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped reproduction runs: long `file:` model names and attack specs with options."""
    path = tmp_path_factory.mktemp("runs") / "reproductions.sqlite"
    path.write_bytes(gzip.decompress((REPO / "docs" / "runs" / "reproductions.sqlite.gz").read_bytes()))
    return path


def args_for(command: str, db: Path) -> list[str]:
    return [command, "--db", str(db), "--limit", "30"] if command == "runs" else [command]


@pytest.fixture(scope="module")
def records(db: Path) -> dict[str, list[dict]]:
    """Every command's records, read from its `--format json`."""
    out = {}
    for command in LISTINGS:
        data = json.loads(run(*args_for(command, db), "--format", "json"))
        out[command] = data["recipes"] if command == "recipes" else data
        assert out[command] and all(isinstance(r, dict) for r in out[command])
    return out


def parse_first_table(text: str) -> tuple[list[str], list[list[list[str]]]]:
    """(headers, rows): each row a list of cells, each cell the lines it spans (rich's box)."""
    lines = text.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    head = [line.strip("┃").split("┃") for line in lines[:end] if line.startswith("┃")]
    headers = [" ".join(part[c].strip() for part in head).strip() for c in range(len(head[0]))]
    rows: list[list[list[str]]] = []
    for line in lines[:end]:
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[0]:  # the name column is never empty: a new row starts
            rows.append([[c] for c in cells])
        else:
            for cell, more in zip(rows[-1], cells):
                cell.append(more)
    return headers, rows


def shown(cell_lines: list[str]) -> str:
    return " ".join(line for line in cell_lines if line)


@pytest.mark.parametrize("command,columns", [("models", 80), ("models", 40), ("attacks", 80), ("recipes", 80), ("runs", 80), ("runs", 200)])
def test_tables_fit_the_width_and_never_cut_a_name_or_number(command: str, columns: int, db: Path, records: dict) -> None:
    text = run(*args_for(command, db), columns=columns)
    headers, rows = parse_first_table(text)
    listing: Listing = LISTINGS[command]([])
    by_header: dict[str, Column] = {c.header: c for c in listing.columns}
    assert [shown(row[0]) for row in rows] == [r[NAME_FIELD[command]] for r in records[command]]  # every name, whole, in order
    assert set(headers) <= set(by_header), headers
    for row, record in zip(rows, records[command]):
        for header, cell in zip(headers, row):
            column = by_header[header]
            expected = column.show(record[column.field])
            if column.kind == "id":  # names and numbers: on one line, whole
                assert cell[0] == expected and not any(cell[1:]), (header, cell, expected)
            elif column.kind == "list":  # wrapped only between items
                assert shown(cell) == expected, (header, cell, expected)
    widest = max(len(line) for line in text.splitlines())
    keep_only = all(by_header[h].keep for h in headers)
    assert widest <= columns or keep_only, f"{widest} columns wide at COLUMNS={columns} with {headers}"
    if command != "runs":  # the catalogs' names fit 80 columns, so nothing there needs more
        assert widest <= columns


def test_names_are_one_per_line_and_json_has_every_field(db: Path, records: dict) -> None:
    for command in LISTINGS:
        names = run(*args_for(command, db), "--format", "names").splitlines()
        assert names == [r[NAME_FIELD[command]] for r in records[command]]
        assert all(name and name == name.strip() and "│" not in name for name in names)
        fields = {c.field for c in LISTINGS[command]([]).columns}
        assert all(fields <= set(r) for r in records[command]), command
    assert {"recipes", "options"} == set(json.loads(run("recipes", "--format", "json")))


def test_a_pattern_and_grep_find_whole_names() -> None:
    kap = run("models", "*kap*", "--format", "names").split()
    assert kap and all("kap" in name for name in kap)
    table = run("models", columns=80)
    first_cells = [line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│")]
    assert [cell for cell in first_cells if "kap" in cell] == kap  # `| grep kap` sees every such name, whole


def test_a_bad_format_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from advbench.cli.app import main

    monkeypatch.setattr("sys.argv", ["advbench", "models", "--format", "xml"])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and "unknown format 'xml'" in err
