"""Reports read back from the store: leaderboards in every format, curves and plots, suites, the regression gate."""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path

import pytest
from test_cli import advbench

from advbench.engine import EvalSpec, Runtime, run_eval
from advbench.report.curves import curves_from_run, parse_eps_range, plot_curves
from advbench.report.leaderboard import (
    build_leaderboard,
    render_csv,
    render_json,
    render_markdown,
)
from advbench.store import Store, summarize


@pytest.fixture(scope="module")
def report_db(digits_zoo, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("reports") / "r.sqlite"
    for eps in ((0.02, 0.05, 0.1),):
        run_eval(EvalSpec(model="rn18-nt", dataset="digits", attacks=("fgsm", "pgd"), eps=eps, n=80, checks=False), Runtime(db=db, zoo=digits_zoo))
    run_eval(EvalSpec(model="rn18-nt", dataset="digits", attacks=("pgd",), eps=(1.0,), norm="l2", n=80, checks=False), Runtime(db=db, zoo=digits_zoo))
    return db


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_every_leaderboard_format_matches_the_database(report_db) -> None:
    with Store(report_db) as store:
        boards = build_leaderboard(store, dataset="digits")
        summaries = {r.runs[0]: summarize(store, r.runs[0]) for b in boards for r in b.rows}
        md, text_csv, text_json = render_markdown(boards), render_csv(boards), render_json(boards)
    rows = [r for b in boards for r in b.rows]
    assert len(boards) == len(rows) == 4  # three Linf budgets and one L2, one run each: a board and a row each
    assert [(b.threat.norm, b.threat.eps) for b in boards] == [("l2", 1.0), ("linf", 0.02), ("linf", 0.05), ("linf", 0.1)]
    parsed = list(csv.DictReader(io.StringIO(text_csv)))
    data = json.loads(text_json)
    assert [r["model"] for r in parsed] == [r["model"] for r in data] == [r.model for r in rows]
    for row, from_csv, from_json in zip(rows, parsed, data):
        per = next(p for p in summaries[row.runs[0]].per_eps if p.eps == row.eps)
        assert float(from_csv["worst case %"]) == pytest.approx(100 * per.worst_case, abs=0.006)
        assert (from_csv["norm"], float(from_csv["eps"])) == (row.norm, row.eps)
        assert from_json["worst_case"] == per.worst_case and from_json["clean"] == summaries[row.runs[0]].clean_accuracy
        lo, hi = from_json["worst_case_ci"]
        assert lo <= per.worst_case <= hi
        assert f"| {row.model} |" in md and f"{100 * per.worst_case:.2f}" in md
        assert f"## digits, {row.norm} eps = {row.eps:g}" in md


def test_curves_from_a_stored_run_and_a_valid_png(report_db, tmp_path) -> None:
    with Store(report_db) as store:
        run = next(r for r in store.list_runs() if r.config["norm"] == "linf")
        curves = curves_from_run(store, run.run_id)
    pgd = next(c for c in curves if c.label.endswith("/ pgd"))
    assert pgd.eps == [0.02, 0.05, 0.1] and pgd.accuracy == sorted(pgd.accuracy, reverse=True)
    png = plot_curves(curves, tmp_path / "c.png")
    assert png_size(png) == (640, 400)
    assert parse_eps_range("0:0.3:0.1") == [0.0, 0.1, 0.2, 0.3]
    assert parse_eps_range("0.01, 0.03") == [0.01, 0.03]


@pytest.mark.parametrize("text", ["0.1,,0.2", "0.1,", ",0.1", "0.1:0.2", "a", "-0.1"])
def test_an_eps_list_with_a_typo_is_refused(text: str) -> None:
    from advbench.core.errors import UsageError

    with pytest.raises(UsageError, match="--eps"):
        parse_eps_range(text)


def test_minimum_norm_attack_gives_a_whole_curve_from_one_run(digits_zoo, tmp_path) -> None:
    from advbench.report.curves import minimum_norm_curve, minimum_norm_stats

    db = tmp_path / "m.sqlite"
    grid = [0.0, 0.05, 0.1, 0.2, 0.5, 1.0]
    out = run_eval(EvalSpec(model="rn18-nt", dataset="digits", attacks=("deepfool",), eps=tuple(grid), norm="l2", n=60, checks=False), Runtime(db=db, zoo=digits_zoo))
    with Store(db) as store:
        derived = minimum_norm_curve(store, out.summary.run_id, "deepfool", grid)
        stats = minimum_norm_stats(store, out.summary.run_id, "deepfool")
    # The curve derived from the stored smallest norms equals the per-eps evaluation of the same run.
    assert [round(a, 6) for _, a in derived] == [round(p.worst_case, 6) for p in out.summary.per_eps]
    assert stats["success_rate"] > 0.8 and stats["median_norm"] <= stats["mean_norm"] * 3


def test_worst_case_curve_over_single_attack_runs_equals_one_run_of_both(digits_zoo, tmp_path) -> None:
    from advbench.core.errors import UsageError
    from advbench.report.curves import minimum_norm_curve, worst_minimum_norm_curve

    db = tmp_path / "w.sqlite"
    grid = [0.0, 0.1, 0.3, 0.6, 1.0, 2.0]
    runtime = Runtime(db=db, zoo=digits_zoo)
    spec = {"model": "rn18-nt", "dataset": "digits", "eps": tuple(grid), "norm": "l2", "n": 60, "checks": False}
    weak = run_eval(EvalSpec(attacks=("deepfool:steps=1",), **spec), runtime).summary
    strong = run_eval(EvalSpec(attacks=("deepfool",), **spec), runtime).summary
    both = run_eval(EvalSpec(attacks=("deepfool:steps=1", "deepfool"), **spec), runtime).summary
    other = run_eval(EvalSpec(attacks=("deepfool",), **{**spec, "n": 40}), runtime).summary
    with Store(db) as store:
        worst = worst_minimum_norm_curve(store, [weak.run_id, strong.run_id], grid)
        singles = [minimum_norm_curve(store, r.run_id, r.attacks[0], grid) for r in (weak, strong)]
        with pytest.raises(UsageError, match="differ"):
            worst_minimum_norm_curve(store, [weak.run_id, other.run_id], grid)
        with pytest.raises(UsageError, match="one run per"):
            worst_minimum_norm_curve(store, [both.run_id], grid)
    # Per sample, the smaller of the two norms: exactly what one run of both attacks reports per eps.
    assert [round(a, 6) for _, a in worst] == [round(p.worst_case, 6) for p in both.per_eps]
    assert all(w <= min(a[1], b[1]) + 1e-9 for (_, w), a, b in zip(worst, *singles))
    assert singles[0] != singles[1]  # the one-step DeepFool is weaker somewhere: the combination is not trivial


def test_cli_leaderboard_html_and_suite_and_regression_gate(digits_zoo, tmp_path) -> None:
    db = tmp_path / "g.sqlite"
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: tiny\ndataset: digits\nn: 40\nmodels: [rn18-nt]\nattacks: [fgsm]\nthreats:\n  - {norm: linf, eps: [0.02, 0.05]}\nchecks: false\n"
    )
    zoo = ["--zoo", str(digits_zoo)]
    first = advbench("run", str(suite), "--db", str(db), *zoo)
    assert first.returncode == 0, first.stderr
    again = advbench("run", str(suite), "--db", str(db), *zoo)
    assert again.returncode == 0 and "stored" in again.stdout
    html = tmp_path / "lb.html"
    assert advbench("leaderboard", "--db", str(db), "--format", "html", "--out", str(html)).returncode == 0
    assert "<table class='leaderboard'>" in html.read_text() and html.read_text().count("<section ") == 2  # one board per budget
    baseline = tmp_path / "baseline.json"
    assert advbench("check", "--update", "--baseline", str(baseline), "--db", str(db)).returncode == 0
    assert advbench("check", "--baseline", str(baseline), "--db", str(db)).returncode == 0  # equal
    entries = json.loads(baseline.read_text())
    for e in entries["entries"]:
        e["accuracy"] = max(0.0, e["accuracy"] - 0.2)  # the baseline was worse: now improved
    baseline.write_text(json.dumps(entries))
    assert advbench("check", "--baseline", str(baseline), "--db", str(db)).returncode == 0
    for e in entries["entries"]:
        e["accuracy"] = min(1.0, e["accuracy"] + 0.5)  # the baseline was much better: regressed
    baseline.write_text(json.dumps(entries))
    failed = advbench("check", "--baseline", str(baseline), "--db", str(db), "--stat")
    assert failed.returncode == 1 and "REGRESSED" in failed.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [rn18-nt]\nattacks: [pgd]\nthreats: [{norm: linf, eps: 0.1}]\nmodles: [x]\n")
    proc = advbench("run", str(bad), "--db", str(db))
    assert proc.returncode == 2 and "unknown key(s) modles" in proc.stderr


def test_html_leaderboard_renders_in_headless_chromium(report_db, tmp_path) -> None:
    import re
    import shutil
    import subprocess

    from advbench.report.html import render_html

    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (scripts/ensure-chromium.sh installs the Debian package as root)")
    with Store(report_db) as store:
        boards = build_leaderboard(store, dataset="digits")
    page = tmp_path / "lb.html"
    page.write_text(render_html(boards))
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    sections = re.findall(r'<section data-dataset="digits" data-norm="(\w+)" data-eps="([\d.]+)">(.*?)</section>', dom)
    assert [(norm, float(eps)) for norm, eps, _ in sections] == [(b.threat.norm, b.threat.eps) for b in boards]
    for (_, _, section), board in zip(sections, boards):
        header = re.findall(r"<th[^>]*>(.*?)</th>", section)
        body = section[section.index("<tbody>") : section.index("</tbody>")]
        rendered = [re.findall(r"<td[^>]*>(.*?)</td>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", body)]
        assert len(rendered) == len(board.rows)
        worst = header.index("worst case %")
        assert [r[worst] for r in rendered] == [f"{100 * r.worst_case:.2f}" for r in board.rows]
        assert [r[header.index("model")] for r in rendered] == [r.model for r in board.rows]
    assert '<img alt="robust accuracy vs eps" src="data:image/png;base64,' in dom
