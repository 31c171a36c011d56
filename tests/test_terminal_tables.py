"""Terminal tables that fit (issue 40 item 4): `advbench leaderboard` prints compact boards of at
most 8 columns sized to the terminal, and they, `check`'s regression table, `show` and the eval
summary hold their width at COLUMNS=80 and 120 without cutting a name or a number. Every word
each cell holds must come out whole (cells wrap between words only); `--format` keeps every column."""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import pytest
from conftest import REPO
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from advbench.cli import boards, render
from advbench.cli.fit import Col, fit_widths, lines_at, overhead
from advbench.report.baseline import BaselineEntry
from advbench.report.leaderboard import Board, LeaderboardRow, pct, to_table
from advbench.report.merge import Threat
from advbench.report.regression import Comparison
from advbench.store.summary import EpsSummary, RunSummary

WIDTHS = (80, 120)
THREAT = Threat("fashion-mnist", "linf", 0.1)


def row(model: str, rank: int = 1, **fields: object) -> LeaderboardRow:
    base = LeaderboardRow(
        rank, model, f"{rank:02d}" + "ab" * 31, THREAT.dataset, THREAT.norm, THREAT.eps, 100, 0.87, (0.79, 0.92),
        0.62, (0.5221, 0.7090), "auto", {"auto": 25}, ["auto"], None, "reliable", 438.4, False, 0.381,
        "", "not reported", None, "", "cnn",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


CASES: dict[str, list[LeaderboardRow]] = {
    "the demo's three models": [
        row("madry-cnn-at", 1, clean=0.79, worst_case=0.77, worst_case_ci=(0.6785, 0.8416), found_by={"auto": 2}, paper="74.10 (pgd, Table 4.1)"),
        row("cnn3", 2),
        row("kap-cnn3", 3, clean=0.86, worst_case=0.0, worst_case_ci=(0.0, 0.037), found_by={"auto": 86}, passes_per_sample=1.0, seconds_per_sample=0.00737),
    ],
    "a random model's expected accuracy": [
        row("pni-w", 1, verdict="escalated", expected=0.5512, expected_ci=(0.5021, 0.6003), found_by={"auto": 20, "check:square-500": 3}),
        row("cnn3", 2),
    ],
    "one name, two checkpoints": [row("pfe-madry-bpda-identity", 1), row("pfe-madry-bpda-identity", 2, worst_case=0.45)],
    "long attack specs, checks off": [
        row("cpni-w-smooth-prediction", 1, verdict="", n=1000,
            found_by={"pgd:rel_stepsize=0.05,restarts=3,steps=100": 466, "bim:rel_stepsize=0.1,steps=20": 7}),
        row("smooth-vr-lambda0p01", 2, verdict="", found_by={"transfer:square:n_queries=5000": 8}),
    ],
    "AutoAttack without steps, an unreliable verdict": [
        row("cpni-w-smooth-weighted", 1, verdict="unreliable", passes_per_sample=0.0, passes_lower_bound=True, found_by={"autoattack": 40}),
        row("rn18-trades", 2, passes_per_sample=12_345.0, passes_lower_bound=True, seconds_per_sample=123.4, sample_sets=2),
    ],
    "certified accuracy asked": [row("kap-rn18", 1, certified={"r=0.25": 0.41, "r=0.5": 0.2}), row("rn18-nt", 2, certified={"r=0.25": 0.3})],
    "nothing broken": [row("cnn3", 1, found_by={}, worst_case=0.87), row("broken-model", 2, clean=0.0, worst_case=0.0, found_by={})],
}


def render_to(width: int, draw: Callable[[Console], None]) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=False)
    draw(console)
    return console.file.getvalue()  # type: ignore[attr-defined]


def assert_fits(text: str, width: int, words: list[str]) -> None:
    """Every line within `width`, nothing ellipsized, and every expected word whole on some line."""
    wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not wide, f"{len(wide)} lines wider than {width}:\n" + "\n".join(wide)
    assert "…" not in text
    tokens = set(text.split())
    missing = [w for w in words if w not in tokens]
    assert not missing, f"cut or missing: {missing}\n{text}"


def row_words(r: LeaderboardRow) -> list[str]:
    """The names and numbers a row must show, built from its fields (not from the renderer)."""
    words = [r.model, pct(r.clean), pct(r.worst_case), f"({pct(r.worst_case_ci[0])}-{pct(r.worst_case_ci[1])})", str(r.n)]
    for attack, count in r.found_by.items():
        words += [*boards.attack_words(attack).split(), str(count)]
    words += [r.verdict] if r.verdict else []
    words += [pct(v) for v in r.certified.values()]
    if r.expected is not None and r.expected_ci:
        words += ["expected", pct(r.expected), f"({pct(r.expected_ci[0])}-{pct(r.expected_ci[1])})"]
    return words


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("case", CASES)
def test_boards_fit_and_cut_no_name_or_number(case: str, width: int) -> None:
    rows = CASES[case]
    board = Board(THREAT, rows)
    text = render_to(width, lambda console: boards.print_boards([board], console))
    assert_fits(text, width, [w for r in rows for w in row_words(r)])
    table = boards.board_table(board, width)
    headers = [str(c.header) for c in table.columns]
    assert len(headers) <= 8 and headers[:3] == ["model", "clean %", "worst case %"], headers
    assert ("verdict" in headers) == any(r.verdict for r in rows)
    if width >= 120:  # room for every column
        assert boards.COST in headers
    assert ("expected" in text) == any(r.expected is not None for r in rows)


@pytest.mark.parametrize(
    "found_by,clean,expected",
    [
        ({"auto": 25}, 0.87, "auto broke 25 of 87"),
        ({"fgsm": 11, "pgd": 1}, 0.84, "fgsm broke 11 of 84; pgd broke 1 more"),
        ({"bim:rel_stepsize=0.1,steps=20": 315}, 0.889, "bim: rel_stepsize=0.1, steps=20 broke 315 of 89"),
        ({}, 0.87, "no attack broke any of 87"),
        ({}, 0.0, "no image classified correctly"),
    ],
)
def test_found_by_in_words(found_by: dict[str, int], clean: float, expected: str) -> None:
    assert boards.found_words(row("m", found_by=found_by, clean=clean)) == expected


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("auto", "auto"),
        ("check:square-500", "check:square-500"),
        ("pgd:rel_stepsize=0.05,restarts=3,steps=100", "pgd: rel_stepsize=0.05, restarts=3, steps=100"),
        ("transfer:square:n_queries=5000", "transfer:square: n_queries=5000"),
        ("transfer:pgd:steps=50,restarts=2", "transfer:pgd: steps=50, restarts=2"),
    ],
)
def test_attack_specs_wrap_before_options_and_after_commas(spec: str, expected: str) -> None:
    assert boards.attack_words(spec) == expected
    assert "".join(expected.split()) == spec  # only spaces added: the spec itself is whole


@pytest.mark.parametrize(
    "fields,expected",
    [
        ({"passes_per_sample": 539.5, "seconds_per_sample": 0.974}, "540 passes, 0.97 s"),
        ({"passes_per_sample": 1.0, "seconds_per_sample": 0.00737}, "1 pass, 0.0074 s"),
        ({"passes_per_sample": 12_345.0, "passes_lower_bound": True, "seconds_per_sample": 123.4}, ">= 12,345 passes, 123 s"),
        ({"passes_per_sample": 0.0, "passes_lower_bound": True, "seconds_per_sample": 2.5}, "passes not reported, 2.5 s"),
    ],
)
def test_cost_in_words(fields: dict[str, object], expected: str) -> None:
    assert boards.cost_words(row("m", **fields)) == expected


@pytest.mark.parametrize("width", [30, 40, 60, 80, 100, 120, 200])
def test_fit_widths_never_below_a_word_and_use_the_fewest_lines(width: int) -> None:
    columns = [Col("model", wrap=False), Col("clean %", wrap=False), Col("worst case %"), Col("found by"), Col("cost per image", keep=False)]
    cells = [["madry-cnn-at", "79.00", "77.00 (67.85-84.16)", "auto broke 2 of 79", "540 passes, 0.97 s"],
             ["cnn3", "87.00", "0.00 (0.00-3.70)", "fgsm broke 11 of 84; pgd broke 1 more", "2 passes, 0.011 s"]]
    shown, widths = fit_widths(columns, cells, width, boxed=False)
    for i, w in zip(shown, widths):
        floor = max(max(len(word) for word in row[i].split()) for row in cells)
        assert w >= (max(len(row[i]) for row in cells) if not columns[i].wrap else floor), (columns[i].header, w)
    assert 0 in shown and 1 in shown and 2 in shown  # kept columns are never dropped
    needed = overhead(len(shown), boxed=False) + sum(widths)
    assert needed <= width or shown == [0, 1, 2, 3]  # too narrow: only the droppable column went
    one_line = overhead(len(columns), boxed=False) + sum(max(len(row[i]) for row in cells) for i in range(len(columns)))
    tallest = max(lines_at(row[i], w) for row in cells for i, w in zip(shown, widths))
    assert (tallest == 1) == (width >= one_line)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    path.write_bytes(gzip.decompress((REPO / "docs" / "runs" / "demo.sqlite.gz").read_bytes()))
    return path


def cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "advbench", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_leaderboard_fits_one_screen(demo_db: Path, width: int) -> None:
    """The demo's closing summary: every model, number and interval of its CSV, whole, in at most
    45 lines (the demo prints four more) and within the width."""
    table = cli("leaderboard", "--db", str(demo_db), columns=width)
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(cli("leaderboard", "--db", str(demo_db), "--format", "csv").stdout)))
    assert len(rows) == 9
    words = [w for r in rows for w in (r["model"], r["clean %"], r["worst case %"], f"({r['95% CI']})", r["n"], "broke", r["verdict"])]
    assert_fits(table.stdout, width, words)
    assert len(table.stdout.splitlines()) <= 45
    if width >= 120:  # found by, in words, on one line
        assert "auto broke 25 of 87" in table.stdout
    assert "checkpoint" not in table.stdout.split("\n\n")[0]  # the terminal board has no checkpoint column


def test_formats_and_out_keep_every_column(demo_db: Path, tmp_path: Path) -> None:
    with_all = to_table([row("m")])[0]
    md = cli("leaderboard", "--db", str(demo_db), "--format", "md").stdout
    assert "| " + " | ".join(with_all) + " |" in md
    out = tmp_path / "board.md"
    assert cli("leaderboard", "--db", str(demo_db), "--out", str(out)).returncode == 0
    assert out.read_text() == md  # --out without --format: Markdown, every column
    refused = cli("leaderboard", "--db", str(demo_db), "--format", "table", "--out", str(out))
    assert refused.returncode == 2 and "--format table is for the terminal" in refused.stderr


def comparison(model: str, attack: str, was: float, now: float, verdict: str, p: float | None = None) -> Comparison:
    entry = BaselineEntry(model, "fashion-mnist", "linf", 0.1, attack, was, 200, 0)
    return Comparison(entry, now, 200, 100 * (was - now), p, was - now > 0.01, verdict)


@pytest.mark.parametrize("width", WIDTHS)
def test_regression_show_and_summary_tables_fit(demo_db: Path, width: int) -> None:
    from advbench.store import Store, summarize

    results = [comparison("madry-cnn-at", "worst case", 0.8, 0.8, "reliable"), comparison("kap-cnn3", "pgd:steps=20,restarts=2", 0.9, 0.4, "escalated", 0.0012),
               comparison("cnn3", "auto", 0.5, 0.5, "unreliable")]
    text = render_to(width, lambda c: render.show(render.regression_table(results, "regression check against docs/suites/ci-baseline.json (tolerance 1 points)", width), c))
    assert_fits(text, width, ["madry-cnn-at", "kap-cnn3", "80.00", "40.00", "+50.00", "p=0.0012", "REGRESSED", "UNRELIABLE", "(escalated)", "docs/suites/ci-baseline.json"])

    with Store(demo_db) as store:
        record = store.list_runs(1)[0]
        summary = summarize(store, record.run_id)
    text = render_to(width, lambda c: (render.show(render.run_info_table(record, width), c), render.show(render.summary_table(summary, width), c)))
    assert_fits(text, width, [record.checkpoint_sha256, record.git_commit or "", record.model, "logits-not-probabilities:", *[pct(e.worst_case) for e in summary.per_eps]])

    attacks = ["fgsm", "pgd:steps=40,restarts=5", "apgd-ce", "square:n_queries=5000", "autoattack"]
    many = RunSummary("abc123def456", "cpni-w-smooth-prediction", "fashion-mnist", "linf", attacks, 100, 0.9,
                      [EpsSummary(0.1, {a: 0.5 - 0.01 * i for i, a in enumerate(attacks)}, 0.4, expected_robust=0.45, expected_robust_sd=0.2)],
                      12.3, "reliable", clean_expected=0.88, clean_expected_sd=0.1, vote_test="SPRT at 0.05")
    text = render_to(width, lambda c: render.show(render.summary_table(many, width), c))
    assert_fits(text, width, ["pgd:", "steps=40,", "restarts=5", "square:", "n_queries=5000", "50.00", "46.00", "40.00", "45.00", "(41.03-48.97)"])


def test_a_table_wider_than_the_console_is_printed_whole() -> None:
    """Names alone wider than the console: the table is printed wider rather than cut."""
    name = "file:/a/very/long/path/to/a/model/definition/module.py:ResNet18WithAnUnusuallyLongName"
    text = render_to(40, lambda c: render.show(render.table("t", ["model", "acc %"], [[name, "12.50"]], width=40), c))
    assert name in text.split() and "12.50" in text.split() and "…" not in text
    assert Text(name).cell_len > 40


def test_no_board_and_an_explicit_table_format(demo_db: Path) -> None:
    assert render_to(80, lambda c: boards.print_boards([], c)).strip() == "no finished evaluations match"
    default = cli("leaderboard", "--db", str(demo_db), columns=120)
    explicit = cli("leaderboard", "--db", str(demo_db), "--format", "table", columns=120)
    assert explicit.returncode == 0 and explicit.stdout == default.stdout
    none = cli("leaderboard", "--db", str(demo_db), "--dataset", "cifar10", columns=120)
    assert none.returncode == 0 and none.stdout.strip() == "no finished evaluations match"
