"""The stored panel of `benchmarks/random_vs_autoattack.py` (docs/runs/random-vs-autoattack.json):
the keys issue 38 asks for, tests that recompute from the stored counts, commits that exist, and
the figures docs/performance.md quotes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

REPO = Path(__file__).resolve().parents[1]
ROWS = json.loads((REPO / "docs" / "runs" / "random-vs-autoattack.json").read_text())
KEYS = {"model", "n", "auto_seconds", "autoattack_seconds", "auto_robust", "autoattack_robust", "caught", "commit"}


def test_the_panel_covers_the_issues_random_models_with_its_keys() -> None:
    assert {"pni-w", "cpni-w-smooth-soft", "sc-frontend"} <= {r["model"] for r in ROWS} and len(ROWS) >= 4
    for row in ROWS:
        assert KEYS <= set(row) and row["n"] >= 100, row["model"]
        assert 0 <= row["auto_robust"] <= 1 and 0 <= row["autoattack_robust"] <= 1 and 0 <= row["caught"] <= 1
        assert row["auto_seconds"] > 0 and row["autoattack_seconds"] > 0


def test_each_rows_intervals_and_test_recompute_from_its_counts() -> None:
    for row in [r for r in ROWS if "mcnemar_p" in r]:
        n = row["n"]
        for side in ("auto", "autoattack"):
            held = round(row[f"{side}_robust"] * n)
            low, high = proportion_confint(held, n, alpha=0.05, method="beta")
            assert row[f"{side}_robust_ci"] == [float(low), float(high)], row["model"]
        only_auto, only_aa = row["only_auto"], row["only_autoattack"]
        expected = binomtest(only_auto, only_auto + only_aa, 0.5).pvalue if only_auto + only_aa else 1.0
        assert abs(row["mcnemar_p"] - expected) < 1e-12
        # Robust accuracies differ by exactly the images only one side broke.
        assert round((row["autoattack_robust"] - row["auto_robust"]) * n) == only_auto - only_aa


def test_each_row_was_made_from_a_recorded_commit() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("no git history to look in (an installed copy)")
    for row in ROWS:
        commit = row["commit"].removesuffix("-dirty")
        found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO, capture_output=True)
        assert found.returncode == 0 and not row["commit"].endswith("-dirty"), row


def test_performance_page_quotes_every_rows_speed_up_and_figures() -> None:
    page = (REPO / "docs" / "performance.md").read_text()
    line = next(line for line in page.splitlines() if "AutoAttack `rand` on random models" in line)
    for row in ROWS:
        assert row["model"] in line
        assert f"{row['autoattack_seconds'] / row['auto_seconds']:.1f}x" in line, row["model"]
        assert f"{100 * row['auto_robust']:.1f}" in line and f"{100 * row['autoattack_robust']:.1f}" in line
