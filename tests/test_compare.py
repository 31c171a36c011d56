"""`advbench compare`: two evaluations on their common images, by paired tests (report/compare.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch
from flip_model import flip_model, inputs_with_p
from scipy.stats import binomtest, ttest_rel
from test_cli import advbench, assert_one_line_error

import advbench as api
from advbench.core.errors import UsageError
from advbench.report.compare import compare_evaluations
from advbench.store import Store, summarize


def run_of(db: Path, attack: str, eps: float) -> str:
    with Store(db) as store:
        (run,) = [
            r for r in store.list_runs(1000)
            if r.kind == "eval" and r.config["attack_names"] == [attack] and eps in r.config["eps"]
            and r.config["norm"] == "linf" and r.n_samples == 40
        ]
    return run.run_id


def robust_samples(db: Path, run_id: str, eps: float) -> set[int]:
    """Straight from the tables: classified correctly and broken by no attack row at eps."""
    with sqlite3.connect(db) as conn:
        correct = {i for i, label, pred in conn.execute(
            "SELECT sample_idx, label, pred FROM clean WHERE run_id = ?", (run_id,)) if label == pred}
        broken = {i for (i,) in conn.execute(
            "SELECT sample_idx FROM samples WHERE run_id = ? AND abs(eps - ?) < 1e-9 AND status = 'attacked' AND success",
            (run_id, eps))}
    return correct - broken


def test_two_runs_on_the_same_images_are_compared_image_by_image(merged_db: Path) -> None:
    fgsm, deepfool = run_of(merged_db, "fgsm", 0.08), run_of(merged_db, "deepfool", 0.08)
    with Store(merged_db) as store:
        c = compare_evaluations(store, fgsm, deepfool, "linf", 0.08)
        own = summarize(store, fgsm).per_eps
    held_a, held_b = robust_samples(merged_db, fgsm, 0.08), robust_samples(merged_db, deepfool, 0.08)
    assert c.n == 40 and (c.only_a, c.only_b) == (len(held_a - held_b), len(held_b - held_a))
    assert c.only_a + c.only_b > 0, "the fixture's two attacks each break a sample the other does not"
    assert c.a.robust == pytest.approx(len(held_a) / 40) and c.b.robust == pytest.approx(len(held_b) / 40)
    assert c.a.robust == pytest.approx(next(e.worst_case for e in own if e.eps == 0.08))
    assert c.mcnemar_p == pytest.approx(binomtest(c.only_a, c.only_a + c.only_b, 0.5).pvalue)
    assert c.a.judged_by == c.b.judged_by == "one pass" and c.expected_difference is None
    assert "no significant difference" in c.robust_finding  # a sample or two apart on 40
    swapped = compare_evaluations(Store(merged_db), deepfool, fgsm, "linf", 0.08)
    assert (swapped.only_a, swapped.only_b, swapped.mcnemar_p) == (c.only_b, c.only_a, c.mcnemar_p)


def test_a_model_with_several_budgets_needs_one_chosen(merged_db: Path) -> None:
    fgsm = run_of(merged_db, "fgsm", 0.08)
    with Store(merged_db) as store:
        with pytest.raises(UsageError, match="several budgets"):
            compare_evaluations(store, "rn18-nt", fgsm)
        with pytest.raises(UsageError, match="no budget both sides measured"):
            compare_evaluations(store, "rn18-nt", fgsm, "l2", 0.5)
        # By name: every run of the model at linf 0.08 merged; the pair of image sets sharing the
        # most images (the 40, not the weak PGD's other 30) is compared.
        c = compare_evaluations(store, "rn18-nt", fgsm, "linf", 0.08)
    assert c.n == 40 and c.only_a == 0  # the merge is at least as strong as one of its runs
    assert len(c.a.run_ids) >= 2


def test_random_models_expected_accuracy_by_a_paired_t_test(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    model = flip_model()
    x, y = inputs_with_p(model, torch.linspace(0.4, 1.0, 20), seed=7)
    db = tmp_path / "flip.sqlite"
    runs = [
        api.evaluate(model.net, x, y, "linf:0.1", attack, checks=False, num_classes=10, eot=3, db=db).summary.run_id
        for attack in ("fgsm", "pgd:steps=8")
    ]
    with Store(db) as store:
        c = compare_evaluations(store, *runs)
    with sqlite3.connect(db) as conn:
        def worst(run: str) -> dict[int, float]:
            p = {i: k / d for i, k, d in conn.execute(
                "SELECT sample_idx, correct_draws, draws FROM clean WHERE run_id = ?", (run,))}
            for i, k, d in conn.execute(
                "SELECT sample_idx, correct_draws, draws FROM samples WHERE run_id = ? AND draws > 0", (run,)):
                p[i] = min(p[i], k / d)
            return p
        a, b = worst(runs[0]), worst(runs[1])
    assert c.n == 20 and c.a.judged_by == c.b.judged_by == "vote"
    diffs = [a[i] - b[i] for i in sorted(a)]
    assert c.expected_difference == pytest.approx(sum(diffs) / 20)
    assert c.expected_p == pytest.approx(ttest_rel([a[i] for i in sorted(a)], [b[i] for i in sorted(b)]).pvalue)
    low, high = c.expected_ci
    assert low <= c.expected_difference <= high


def test_the_command_prints_the_tests_and_refuses_bad_input(merged_db: Path) -> None:
    fgsm, deepfool = run_of(merged_db, "fgsm", 0.08), run_of(merged_db, "deepfool", 0.08)
    proc = advbench("compare", fgsm, deepfool, "--threat", "linf:0.08", "--db", str(merged_db))
    assert proc.returncode == 0, proc.stderr
    assert "exact McNemar test" in proc.stdout and "40 images both measured" in proc.stdout
    proc = advbench("compare", fgsm, deepfool, "--threat", "linf:0.08", "--db", str(merged_db), "--json")
    data = json.loads(proc.stdout)
    assert data["n"] == 40 and data["robust_finding"] and data["a"]["run_ids"] == [fgsm]
    assert_one_line_error(advbench("compare", "no-such-model", fgsm, "--db", str(merged_db)), 2, "no model and no run")
    assert_one_line_error(advbench("compare", "rn18-nt", fgsm, "--db", str(merged_db)), 2, "several budgets")
    assert_one_line_error(advbench("compare", fgsm, deepfool, "--threat", "l2:9", "--db", str(merged_db)), 2, "no budget")
