"""Leaderboards by threat model: one board per dataset and budget, one row per checkpoint merging
every stored run per sample, the paper's number only in its own setting, RobustBench's layout."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sqlite3
from pathlib import Path

import pytest
from test_cli import advbench, assert_one_line_error

from advbench.models.card import ModelCard, card_path
from advbench.report.leaderboard import LeaderboardRow, build_leaderboard, render_csv, render_json, render_markdown
from advbench.report.merge import Threat
from advbench.report.paper import paper_numbers
from advbench.report.robustbench import eps_text, model_info
from advbench.store import Store

LINF_02, LINF_08 = Threat("digits", "linf", 0.02), Threat("digits", "linf", 0.08)


def sample_sets(db: Path, eps: float, norm: str = "linf") -> dict[str, list[str]]:
    """indices hash -> finished evaluation runs at this budget, read with plain SQL."""
    with sqlite3.connect(db) as con:
        runs = con.execute("SELECT run_id, indices_hash, config FROM runs WHERE kind = 'eval' AND status = 'finished'").fetchall()
    out: dict[str, list[str]] = {}
    for run_id, indices, config in runs:
        config = json.loads(config)
        if config["norm"] == norm and any(abs(e - eps) < 1e-9 for e in config["eps"]):
            out.setdefault(indices, []).append(run_id)
    return out


def union_worst_case(db: Path, run_ids: list[str], eps: float) -> tuple[int, int, int]:
    """(n, clean correct, robust) with a sample robust only if correct in every run and broken by no row of any run."""
    with sqlite3.connect(db) as con:
        correct: dict[int, bool] = {}
        broken: set[int] = set()
        for run_id in run_ids:
            for idx, label, pred in con.execute("SELECT sample_idx, label, pred FROM clean WHERE run_id = ?", (run_id,)):
                correct[idx] = correct.get(idx, True) and label == pred
            broken |= {i for (i,) in con.execute(
                "SELECT sample_idx FROM samples WHERE run_id = ? AND abs(eps - ?) < 1e-9 AND status = 'attacked' AND success = 1", (run_id, eps))}
    good = {i for i, ok in correct.items() if ok}
    return len(correct), len(good), len(good - broken)


def boards_of(db: Path, **filters: object) -> list:
    with Store(db) as store:
        return build_leaderboard(store, **filters)  # type: ignore[arg-type]


def test_one_board_per_threat_and_one_row_per_checkpoint(merged_db: Path) -> None:
    boards = boards_of(merged_db, dataset="digits")
    assert [b.threat for b in boards] == [Threat("digits", "l2", 0.5), Threat("digits", "l2", 1.0), LINF_02, LINF_08]
    for board in boards:
        assert len(board.rows) == 1 and all(r.threat == board.threat for r in board.rows)
        assert [r.rank for r in board.rows] == [1]
    # A filter narrows the boards, never mixes them.
    assert [b.threat for b in boards_of(merged_db, norm="linf", eps=0.08)] == [LINF_08]


def test_runs_on_the_same_samples_merge_per_sample_and_other_samples_give_the_lowest(merged_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    with sqlite3.connect(merged_db) as source, sqlite3.connect(db) as copy:
        source.backup(copy)
    both = next(ids for ids in sample_sets(db, 0.08).values() if len(ids) == 2)
    # FGSM and DeepFool on the same 40 samples. Which samples each breaks depends on the trained
    # fixture (conftest.py; on one CPU they broke the same ones), so the copy is made to have each
    # run leave one sample that the other breaks.
    with sqlite3.connect(db) as con:
        broken = [{i for (i,) in con.execute(
            "SELECT sample_idx FROM samples WHERE run_id = ? AND abs(eps - 0.08) < 1e-9 AND status = 'attacked' AND success = 1",
            (run_id,))} for run_id in both]
        common = sorted(broken[0] & broken[1])
        assert len(common) >= 2, "the fixture's FGSM and DeepFool should share two broken samples at linf 0.08"
        for run_id, sample in zip(both, common):
            con.execute("UPDATE samples SET success = 0, adv_pred = label WHERE run_id = ? AND sample_idx = ? AND abs(eps - 0.08) < 1e-9",
                        (run_id, sample))
    row = next(b for b in boards_of(db) if b.threat == LINF_08).rows[0]
    sets = sample_sets(db, 0.08)
    assert len(sets) == 2 and row.sample_sets == 2
    assert sorted(row.runs) == sorted(r for ids in sets.values() for r in ids)
    per_set = {h: union_worst_case(db, ids, 0.08) for h, ids in sets.items()}
    lowest = min(per_set.values(), key=lambda t: t[2] / t[0])
    assert (row.n, round(row.clean * row.n), round(row.worst_case * row.n)) == lowest
    # The row is the two runs' per-sample union (lower than the other 30 samples' PGD): strictly
    # below each run alone, since each breaks a sample the other leaves.
    n, _, robust = union_worst_case(db, both, 0.08)
    alone = [union_worst_case(db, [r], 0.08)[2] for r in both]
    assert row.n == n == 40 and robust < min(alone)
    # Every broken sample is credited to exactly one attack that ran.
    assert sum(row.found_by.values()) == round(row.clean * row.n) - round(row.worst_case * row.n)
    assert row.found_by and set(row.found_by) <= {"fgsm", "deepfool"} and row.attack == next(iter(row.found_by)) and row.verdict == ""
    lo, hi = row.worst_case_ci
    assert lo <= row.worst_case <= hi


def test_the_checks_probes_and_verdict_count_in_the_merge(merged_db: Path) -> None:
    row = next(b for b in boards_of(merged_db) if b.threat == LINF_02).rows[0]
    (ids,) = sample_sets(merged_db, 0.02).values()
    assert sorted(row.runs) == sorted(ids) and row.sample_sets == 1
    assert (row.n, round(row.clean * row.n), round(row.worst_case * row.n)) == union_worst_case(merged_db, ids, 0.02)
    assert {"fgsm", "pgd"} <= set(row.attacks) and any(a.startswith("check:") for a in row.attacks)
    assert row.verdict == "reliable"  # the checked PGD run's; the FGSM run ran no checks


def test_cost_is_the_stored_steps_times_eot_draws_per_sample(merged_db: Path) -> None:
    row = next(b for b in boards_of(merged_db) if b.threat == LINF_02).rows[0]
    marks = ",".join("?" * len(row.runs))
    with sqlite3.connect(merged_db) as con:
        steps, seconds = con.execute(  # the checks' probe rows store no steps and no seconds
            f"SELECT sum(steps), sum(seconds) FROM samples WHERE run_id IN ({marks}) AND abs(eps - 0.02) < 1e-9 AND status = 'attacked'", row.runs).fetchone()
        fgsm = con.execute(f"SELECT count(*) FROM samples WHERE run_id IN ({marks}) AND abs(eps - 0.02) < 1e-9 AND attack = 'fgsm' AND status = 'attacked'",
                           row.runs).fetchone()[0]
    assert row.passes_per_sample == pytest.approx(steps / row.n) and steps > fgsm  # FGSM's one step each, and PGD's
    assert row.seconds_per_sample == pytest.approx(seconds / row.n) and not row.passes_lower_bound


def test_the_paper_number_only_in_its_own_setting() -> None:
    facts = {"dataset": "cifar10", "threat_model": {"norm": "l2", "eps": 1.0}, "reported": [
        {"dataset": "cifar10", "metric": "robust_accuracy", "attack": "pgd", "norm": "l2", "eps": 1.0, "value": 0.6943, "where": "Table 1"},
        {"dataset": "cifar10", "metric": "robust_accuracy", "attack": "autoattack", "norm": "l2", "eps": 1.0, "value": 0.216, "where": "Table 1"},
        {"dataset": "cifar10", "metric": "clean_accuracy", "value": 0.798, "where": "Table 1"},
    ]}
    assert paper_numbers(facts, "cifar10", "l2", 1.0) == ("21.60 (autoattack, Table 1)", "")  # the paper's strongest attack
    assert paper_numbers(facts, "fashion-mnist", "linf", 0.1) == ("", "cifar10 l2 1: 21.60 (autoattack, Table 1)")
    assert paper_numbers(facts, "cifar10", "linf", 1.0)[0] == ""  # another norm is another setting
    assert paper_numbers({}, "cifar10", "l2", 1.0) == ("", "")
    assert paper_numbers({**facts, "reported": []}, "cifar10", "l2", 1.0) == ("", "not reported")


def test_the_paper_number_of_the_models_own_variant_only() -> None:
    # A sweep over T (dissertation Table B.1) must not lend another T's number to the T = 15 model.
    sweep = {"dataset": "cifar10", "metric": "robust_accuracy", "attack": "bpda-pgd", "norm": "linf", "eps": 0.031373}
    facts = {"dataset": "cifar10", "variant": "T=15", "threat_model": {"norm": "linf", "eps": 0.031373}, "reported": [
        {**sweep, "value": 0.3733, "where": "Table 4.5"},
        {**sweep, "value": 0.3283, "variant": "T=5", "where": "Table B.1"},
        {**sweep, "value": 0.4455, "variant": "T=15", "where": "Table B.1"},
    ]}
    assert paper_numbers(facts, "cifar10", "linf", 0.031373) == ("37.33 (bpda-pgd, Table 4.5)", "")
    facts["reported"][0]["value"] = 0.50  # the T = 15 sweep entry is the model's own: now the lowest
    assert paper_numbers(facts, "cifar10", "linf", 0.031373) == ("44.55 (bpda-pgd, Table B.1)", "")
    del facts["variant"]  # no variant named: only the entries without one
    assert paper_numbers(facts, "cifar10", "linf", 0.031373) == ("50.00 (bpda-pgd, Table 4.5)", "")


def test_every_format_shows_the_boards(merged_db: Path) -> None:
    boards = boards_of(merged_db)
    rows = [r for b in boards for r in b.rows]
    md, table, data = render_markdown(boards), list(csv.DictReader(io.StringIO(render_csv(boards)))), json.loads(render_json(boards))
    assert md.count("\n## ") + md.startswith("## ") == len(boards) and "## digits, linf eps = 0.08" in md
    assert [(t["dataset"], t["norm"], float(t["eps"])) for t in table] == [(d["dataset"], d["norm"], d["eps"]) for d in data] == [
        (r.dataset, r.norm, r.eps) for r in rows]
    for row, from_csv, from_json in zip(rows, table, data):
        assert float(from_csv["worst case %"]) == pytest.approx(100 * row.worst_case, abs=0.006)
        assert from_json["worst_case"] == row.worst_case and from_json["found_by"] == row.found_by
        assert from_csv["paper %"] == "-" and from_csv["paper (own setting)"].startswith("cifar10 l2 1: ")  # rn18-nt's paper is CIFAR-10 L2
        assert f"| {row.model} | {row.checkpoint[:12]} |" in md


def test_robustbench_files_in_its_layout(merged_db: Path, tmp_path: Path) -> None:
    assert_one_line_error(advbench("leaderboard", "--format", "robustbench", "--db", str(merged_db)), 2, "give the folder as --out DIR")
    a_file = tmp_path / "file.json"
    a_file.write_text("{}")
    assert_one_line_error(advbench("leaderboard", "--format", "robustbench", "--out", str(a_file), "--db", str(merged_db)), 2, "is a file")
    out = tmp_path / "model_info"
    proc = advbench("leaderboard", "--format", "robustbench", "--out", str(out), "--db", str(merged_db))
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert files == ["digits/L2/rn18-nt_eps0.5.json", "digits/L2/rn18-nt_eps1.json", "digits/Linf/rn18-nt_eps0.02.json", "digits/Linf/rn18-nt_eps0.08.json"]
    info = json.loads((out / "digits/Linf/rn18-nt_eps0.08.json").read_text())
    row = next(b for b in boards_of(merged_db) if b.threat == LINF_08).rows[0]
    assert {k: info[k] for k in ("dataset", "threat_model", "eps", "clean_acc", "autoattack_acc", "unreliable", "number_forward_passes")} == {
        "dataset": "digits", "threat_model": "Linf", "eps": "0.08", "clean_acc": f"{100 * row.clean:.2f}",
        "autoattack_acc": f"{100 * row.worst_case:.2f}", "unreliable": False, "number_forward_passes": 1}
    assert info["footnote"].startswith("Not AutoAttack") and f"found by {row.attack}" in info["footnote"]
    assert info["reported"] == "" and info["name"] == "RN18-NT" and info["architecture"] == "ResNet18"
    assert {"link", "authors", "venue", "additional_data"} <= set(info) and info["advbench"]["runs"] == row.runs


def test_robustbench_keeps_autoattack_and_a_stronger_attack_apart() -> None:
    row = LeaderboardRow(1, "m", "ab" * 32, "cifar10", "linf", 8 / 255, 100, 0.9, (0.8, 0.95), 0.5, (0.4, 0.6), "square", {"square": 3},
                         ["autoattack", "square"], 0.53, "unreliable", 10.0, True, 0.1, "52.40 (pgd, Table 2)", "", 0.524, "", "ResNet18")
    info = model_info(row)
    assert (info["eps"], info["autoattack_acc"], info["external"], info["reported"], info["unreliable"]) == ("8/255", "53.00", "50.00", "52.40", True)
    assert "found by square" in info["footnote"] and info["name"] == "m"
    assert eps_text(0.5) == "0.5" and eps_text(0.0) == "0"


def test_a_random_models_row_leaves_out_its_one_pass_runs_beside_voted_ones(tmp_path: Path) -> None:
    """The shipped zoo database keeps each random model's runs from before votes (every point judged
    by one forward pass) beside its voted default evaluation. Merging them would count noisy passes,
    not robustness: the row shows the voted figure the card records, and says what it left out."""
    db = tmp_path / "zoo.sqlite"
    db.write_bytes(gzip.decompress((Path(__file__).resolve().parents[1] / "docs" / "runs" / "zoo.sqlite.gz").read_bytes()))
    (board,) = boards_of(db, dataset="fashion-mnist", norm="linf", eps=0.1)
    # A model retrained since its first runs has a row per checkpoint: the card's is its row.
    cards = {r.model: ModelCard.from_yaml(card_path(r.model, "fashion-mnist")) for r in board.rows}
    rows = {r.model: r for r in board.rows if r.checkpoint == cards[r.model].sha256}
    assert set(rows) == set(cards)
    voted = {}
    for name, row in rows.items():
        auto = cards[name].metrics.get("auto") or {}
        if auto.get("judged_by") == "vote":
            voted[name] = auto
            assert row.runs == [auto["run"]] and row.one_pass_runs, name
            assert (row.n, round(row.worst_case, 4), row.verdict) == (auto["n"], auto["accuracy"], auto["verdict"])
            assert row.expected is not None and abs(row.expected - auto["expected"]) < 1e-4
        else:
            assert not row.one_pass_runs, name
    assert {"pni-w", "cpni-w", "cpni-w-epgd", "sc-frontend"} <= set(voted)
    (line,) = [line for line in render_markdown([board]).splitlines() if "| pni-w |" in line]
    assert line.endswith("| 2 run(s) judged by one forward pass left out: votes judged the rest |")

    # Without a voted run, the one-pass runs are all there is: they are merged as before.
    with sqlite3.connect(db) as con:
        for table in ("samples", "clean", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", (voted["pni-w"]["run"],))
    (board,) = boards_of(db, dataset="fashion-mnist", norm="linf", eps=0.1)
    (pni,) = [r for r in board.rows if r.model == "pni-w"]
    assert not pni.one_pass_runs and len(pni.runs) == 2 and pni.expected is None
