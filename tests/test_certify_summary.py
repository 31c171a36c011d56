"""scripts/certify_summary.py: the figures docs/notes/performance.md quotes from a certify_efficiency report."""

from __future__ import annotations

import json

from conftest import load_script


def report() -> dict:
    # Two images per cell; the second sits 0.01 under the asked 0.75 and used the whole budget.
    cell = {
        "model": "m", "sigma": 0.25,
        "fixed": {"forward_passes": 200_200, "seconds": 120.4, "certified_accuracy": [1.0, 0.5, 0.5, 0.0, 0.0], "radius": [0.3, 0.74]},
        "sequential": {"forward_passes": 100_622, "seconds": 60.6, "certified_accuracy": [1.0, 0.5, 0.5, 0.0, 0.0], "radius": [0.3, 0.73],
                       "draws_per_image": [522, 100_100]},
    }
    return {"n0": 100, "noise_draws": 100_000, "radii": [0.0, 0.25, 0.5, 0.75, 1.0], "cells": [cell]}


def test_summary_counts_near_images_and_the_cap() -> None:
    (cell,) = load_script("certify_summary").summarize(report())
    assert (cell.images, cell.near, cell.at_cap, cell.max_passes, cell.median_passes) == (2, 1, [0.74], 100_100, 50_311)
    assert cell.near_share == 100_100 / 100_622
    assert cell.row() == ("| m | 0.25 | 2 | 200,200 | 100,622 | **2.0x** | 120 | 61 | 100 / 50 / 50 / 0 / 0 | 100 / 50 / 50 / 0 / 0 "
                          "| 50,311 / 100,100 / 1 |")


def test_near_width_is_a_parameter_and_radius_zero_is_not_asked() -> None:
    summarize = load_script("certify_summary").summarize
    assert summarize(report(), near_width=0.005)[0].near == 0
    # 0.3 is 0.05 from the asked 0.25.
    assert summarize(report(), near_width=0.06)[0].near == 2
    # An abstention (radius 0) is not near the listed radius 0: that one decides only the prediction.
    abstaining = report()
    abstaining["cells"][0]["fixed"]["radius"] = [0.0, 0.74]
    assert summarize(abstaining)[0].near == 1


def test_main_prints_rows_and_totals(tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report()))
    monkeypatch.setattr("sys.argv", ["certify_summary", str(path)])
    load_script("certify_summary").main()
    out = capsys.readouterr().out
    assert "overall: 200,200 fixed against 100,622 sequential passes, 2.0x" in out
    assert "1 images within 0.03 of an asked radius take 99 % of the passes; at the cap: 0.7400" in out
    assert "images at the cap: 1, 99 % of all sequential passes" in out
