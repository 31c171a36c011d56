"""`advbench report RUN|MODEL`: one HTML page per model whose numbers are the store's, rendered in
headless Chromium (DOM read back, screenshot non-blank), with adversarial examples re-created by
the engine that fool the model as the stored rows say."""

from __future__ import annotations

import html
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from statsmodels.stats.proportion import proportion_confint
from test_cli import advbench, assert_one_line_error

from advbench.report.model_report import build_model_report, deceptive_picks
from advbench.store import Store


def chromium() -> str:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (scripts/ensure-chromium.sh installs the Debian package as root)")
    return browser


def table(dom: str, table_id: str) -> tuple[list[str], list[list[str]]]:
    """Header and cell texts of the table with this id in a DOM dump."""
    start = dom.index(f'<table id="{table_id}">')
    block = dom[start : dom.index("</table>", start)]
    header = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", block)]
    rows = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)] for tr in re.findall(r"<tr>(.*?)</tr>", block.split("<tbody>")[1])]
    return header, rows


def exact_interval(count: int, n: int) -> str:
    low, high = proportion_confint(count, n, alpha=0.05, method="beta")
    return f"{100 * low:.2f}-{100 * high:.2f}"


def per_sample(db: Path, run_ids: list[str], eps: float) -> tuple[dict[int, int], set[int], set[int]]:
    """(label per sample, correct in every run, broken by any row of any run) with plain SQL."""
    labels, wrong, broken = {}, set(), set()
    with sqlite3.connect(db) as con:
        for run_id in run_ids:
            for idx, label, pred in con.execute("SELECT sample_idx, label, pred FROM clean WHERE run_id = ?", (run_id,)):
                labels[idx] = label
                wrong |= {idx} if label != pred else set()
            broken |= {i for (i,) in con.execute(
                "SELECT sample_idx FROM samples WHERE run_id = ? AND abs(eps - ?) < 1e-9 AND status = 'attacked' AND success = 1", (run_id, eps))}
    correct = set(labels) - wrong
    return labels, correct, broken & correct


def test_recreated_examples_fool_the_model_as_stored(merged_db: Path, digits_zoo: Path) -> None:
    from advbench.engine import Runtime
    from advbench.engine.examples import recreate_examples

    with Store(merged_db) as store:
        report = build_model_report(store, "rn18-nt")
    picks = deceptive_picks(report, 3)
    assert len(picks) == 6 and {p.attack for p in picks} <= {"fgsm", "pgd", "deepfool"}  # 3 per norm, never a check's probe
    made = recreate_examples(picks, Runtime(db=merged_db, zoo=digits_zoo, device="cpu"))
    with sqlite3.connect(merged_db) as con:
        for pick, example in zip(picks, made):
            stored = con.execute("SELECT adv_pred, label FROM samples WHERE run_id = ? AND sample_idx = ? AND attack = ? AND abs(eps - ?) < 1e-9",
                                 (pick.run_id, pick.sample_idx, pick.attack, pick.eps)).fetchone()
            assert example["success"] and (example["adv_pred"], example["label"]) == stored
            assert example["clean"].shape == example["adversarial"].shape == (1, 8, 8)
            assert 0 < example["distance"] <= pick.eps * (1 + 1e-5)


def test_report_page_numbers_are_the_stores_in_headless_chromium(merged_db: Path, digits_zoo: Path, tmp_path: Path) -> None:
    from PIL import Image

    browser = chromium()
    page = tmp_path / "report.html"
    proc = advbench("report", "rn18-nt", "--db", str(merged_db), "--zoo", str(digits_zoo), "--device", "cpu", "--examples", "2", "--out", str(page))
    assert proc.returncode == 0, proc.stderr
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    with Store(merged_db) as store:
        runs = {r.run_id: r for r in store.list_runs()}

    # Accuracy per threat: clean and robust accuracy and their exact intervals, recomputed from the rows.
    header, rows = table(dom, "accuracy")
    col = {h: i for i, h in enumerate(header)}
    assert {(r[col["norm"]], r[col["eps"]]) for r in rows} == {("l2", "0.5"), ("l2", "1"), ("linf", "0.02"), ("linf", "0.08")}
    for r in rows:
        run_ids = r[col["runs"]].split()
        eps = float(r[col["eps"]])
        by_set: dict[str, list[str]] = {}
        for run_id in run_ids:
            by_set.setdefault(runs[run_id].indices_hash, []).append(run_id)
        counts = [per_sample(merged_db, ids, eps) for ids in by_set.values()]
        labels, correct, broken = min(counts, key=lambda c: (len(c[1]) - len(c[2])) / len(c[0]))
        n, robust = len(labels), len(correct) - len(broken)
        assert r[col["n"]] == str(n) and r[col["clean %"]] == f"{100 * len(correct) / n:.2f}" and r[col["robust %"]] == f"{100 * robust / n:.2f}"
        assert r[col["clean 95% CI"]] == exact_interval(len(correct), n) and r[col["robust 95% CI"]] == exact_interval(robust, n)
        assert r[col["paper %"]] == "-" and r[col["paper (own setting)"]].startswith("cifar10 l2 1: ")
        if r[col["eps"]] == "0.02":
            assert r[col["verdict"]] == "reliable" and r[col["note"]] == ""
        if r[col["eps"]] == "0.08":
            assert r[col["verdict"]] == "-" and r[col["note"]] == "runs on 2 different sample sets: the lowest set's numbers" and len(run_ids) == 3

    # The checks as stored with the run that ran them.
    (checked,) = [r for r in runs.values() if r.config.get("check_results")]
    _, check_rows = table(dom, f"checks-{checked.run_id}")
    assert [(c[0], c[1], c[2]) for c in check_rows] == [
        (c["name"], "passed" if c["passed"] else "failed", f"{c['value']:.4g}") for c in checked.config["check_results"] + checked.config["rechecks"]]

    # Per-class robust accuracy at l2 0.5 (one run), recomputed per class.
    (sweep,) = [r for r in runs.values() if r.config.get("norm") == "l2" and r.kind == "eval"]
    labels, correct, broken = per_sample(merged_db, [sweep.run_id], 0.5)
    header, class_rows = table(dom, f"per-class-{sweep.checkpoint_sha256[:12]}")
    at = header.index("robust % digits l2 0.5")
    for c in class_rows:
        members = [i for i, label in labels.items() if label == int(c[0])]
        assert c[1] == str(len(members)) and c[at] == f"{100 * len(set(members) & correct - broken) / len(members):.2f}"

    # Certified accuracy as the certification stored it; provenance as the runs record it.
    (cert,) = [r for r in runs.values() if r.kind == "certify"]
    header, cert_rows = table(dom, "certified")
    curve = cert.summary["curves"]["0.25"]
    at_radius = dict(zip(curve["radii"], curve["certified_accuracy"]))
    assert cert_rows[0][:3] == [cert.run_id, "digits", "0.25"] and cert_rows[0][3:8] == [f"{100 * at_radius[r]:.2f}" for r in (0.0, 0.25, 0.5, 0.75, 1.0)]
    header, provenance = table(dom, "provenance")
    assert {r[0]: (r[4], r[12]) for r in provenance} == {r.run_id: (r.checkpoint_sha256, r.git_commit or "-") for r in runs.values()}

    # Examples: two per norm, re-created, each fooling the model again; figures embedded.
    grids = re.findall(r'<table id="(examples-[^"]+)">', dom)
    assert len(grids) == 2 and all(row[7] == "yes" for g in grids for row in table(dom, g)[1])
    assert dom.count('src="data:image/png;base64,') >= 5  # two curves, two grids, certified accuracy

    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,2400",
                    page.as_uri()], capture_output=True, timeout=120)
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2400)
    dark = sum(image.histogram()[:200]) / (1280 * 2400)
    assert 0.02 < dark < 0.9 and len(image.getcolors(256) or []) > 20  # text, tables and figures, not a blank page


def test_report_of_one_run_and_bad_targets(merged_db: Path, tmp_path: Path) -> None:
    with Store(merged_db) as store:
        cert = next(r for r in store.list_runs() if r.kind == "certify")
    page = tmp_path / "one.html"
    # No --zoo: the digits checkpoint cannot be found, so the page says why it has no examples.
    proc = advbench("report", cert.run_id[:8], "--db", str(merged_db), "--out", str(page))
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    assert "Certified accuracy vs L2 radius" in text and f"From run {cert.run_id}." in text and "No evaluation among the reported runs" in text
    fgsm_page = tmp_path / "fgsm.html"
    with Store(merged_db) as store:
        fgsm = next(r for r in store.list_runs() if r.config.get("attack_names") == ["fgsm"])
    proc = advbench("report", fgsm.run_id, "--db", str(merged_db), "--out", str(fgsm_page))
    assert proc.returncode == 0 and "warning" in proc.stderr and "adversarial examples not re-created" in fgsm_page.read_text()
    assert "verdict" in fgsm_page.read_text() and "No evaluation of this model ran the checks" in fgsm_page.read_text()
    assert_one_line_error(advbench("report", "no-such-model", "--db", str(merged_db)), 2, "no model and no run 'no-such-model'")
    assert_one_line_error(advbench("report", "rn18-nt", "--examples", "-1", "--db", str(merged_db)), 2, "--examples must be >= 0")
    assert_one_line_error(advbench("report", "rn18-nt", "--db", str(tmp_path / "none.sqlite")), 2, "no result database")
