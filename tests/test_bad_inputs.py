"""Bad input is one clear line naming the file, key and value, and exit 2: never a traceback, never
"internal error", never a lost or changed stored row (issue 15). Every case runs the real console
script on a file written into tmp_path; the regression gate cannot be fooled into exit 0."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import tracemalloc
from pathlib import Path

import pytest
from test_cli import advbench, assert_one_line_error

GOOD_SUITE = "models: [rn18-nt]\nattacks: [fgsm]\nthreats:\n  - {norm: linf, eps: [0.05]}\n"


def alias_bomb(levels: int = 30, width: int = 10) -> str:
    """Billion laughs: `width ** levels` leaves once expanded (10^30 here)."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nmodels: *a{levels - 1}\nattacks: [fgsm]\nthreats: [{{norm: linf, eps: 0.1}}]\n"


# (id, suite file contents, fragment of the one error line)
SUITE_CASES = [
    ("n-string", GOOD_SUITE + "n: abc\n", "'n' must be a positive integer or null (the whole split), got the string 'abc'"),
    ("n-zero", GOOD_SUITE + "n: 0\n", "'n' must be a positive integer"),
    ("n-bool", GOOD_SUITE + "n: true\n", "'n' must be a positive integer"),
    ("n-float", GOOD_SUITE + "n: 200.5\n", "'n' must be a positive integer"),
    ("n-huge", GOOD_SUITE + "n: 99999999999999999999999\n", "'n' must be a positive integer"),
    ("seed-string", GOOD_SUITE + "seed: abc\n", "'seed' must be an integer >= 0, got the string 'abc'"),
    ("seed-negative", GOOD_SUITE + "seed: -3\n", "'seed' must be an integer >= 0"),
    ("batch-size-zero", GOOD_SUITE + "batch_size: 0\n", "'batch_size' must be a positive integer"),
    ("eot-string", GOOD_SUITE + "eot: many\n", "'eot' must be a positive integer"),
    ("certify-list", GOOD_SUITE + "certify: [0.25]\n", "certify must be a mapping of sigmas"),
    ("certify-sigma-negative", GOOD_SUITE + "certify: {sigmas: [-0.25]}\n", "'sigmas[0]' must be a finite number > 0"),
    ("certify-alpha", GOOD_SUITE + "certify: {alpha: 2}\n", "'alpha' must be a number in (0, 1)"),
    ("certify-unknown", GOOD_SUITE + "certify: {sigma: [0.25]}\n", "certify: unknown key(s) sigma"),
    # The schema before `n` meant images everywhere: n_samples was the images and n the noise draws.
    ("certify-old-names", GOOD_SUITE + "certify: {n: 100000, n_samples: 20}\n",
     "certify: 'n_samples' is no longer a key: the images are now 'n' and Cohen's noise draws (formerly 'n') are 'noise_draws'"),
    ("models-nested", GOOD_SUITE.replace("[rn18-nt]", "[[madry-cnn]]"), "'models[0]' must be a model name (a non-empty string), got the list ['madry-cnn']"),
    ("models-string", GOOD_SUITE.replace("[rn18-nt]", "madry-cnn"), "'models' must be a non-empty list of model names (write [madry-cnn]), got the string 'madry-cnn'"),
    ("models-empty", GOOD_SUITE.replace("[rn18-nt]", "[]"), "'models' must be a non-empty list of model names"),
    ("attacks-string", GOOD_SUITE.replace("[fgsm]", "pgd"), "'attacks' must be a non-empty list of attack specs (write [pgd])"),
    ("checks-string", GOOD_SUITE + 'checks: "false"\n', "'checks' must be true or false, got the string 'false'"),
    ("check-n-zero", GOOD_SUITE + "check_n: 0\n", "'check_n' must be a positive integer, got the integer 0"),
    ("dataset-number", GOOD_SUITE + "dataset: 10\n", "'dataset' must be a non-empty string, got the integer 10"),
    ("eps-string", GOOD_SUITE.replace("[0.05]", "[abc]"), "threats[0]: 'eps[0]' must be a finite number >= 0, got the string 'abc'"),
    ("eps-nan", GOOD_SUITE.replace("[0.05]", "[.nan]"), "'eps[0]' must be a finite number >= 0, got the number nan"),
    ("eps-negative", GOOD_SUITE.replace("[0.05]", "[-0.1]"), "'eps[0]' must be a finite number >= 0"),
    ("norm-unknown", GOOD_SUITE.replace("linf", "l3"), "'norm' must be one of linf, l2, l1, l0, got the string 'l3'"),
    ("threat-list", GOOD_SUITE.replace("{norm: linf, eps: [0.05]}", "[linf, 0.05]"), "threats[0] must be a mapping with norm and eps"),
    ("threats-mapping", "models: [m]\nattacks: [fgsm]\nthreats: {norm: linf, eps: 0.1}\n", "'threats' must be a non-empty list"),
    ("unknown-key", GOOD_SUITE + "modles: [x]\n", "unknown key(s) modles"),
    ("duplicate-key", GOOD_SUITE + "models: [kap-rn18]\n", "line 5: duplicate key 'models'"),
    ("not-a-mapping", "- rn18-nt\n", "must be a YAML mapping"),
    ("empty-file", "", "must be a YAML mapping"),
    ("yaml-syntax", "models: [rn18-nt\n", "cannot read suite"),
    ("nested-deep", "models: " + "[" * 5000 + "]" * 5000 + "\n", "cannot read suite"),
    ("alias", "x: &m [rn18-nt]\nmodels: *m\n" + GOOD_SUITE.split("\n", 1)[1], "YAML anchors and aliases"),
    ("alias-bomb", alias_bomb(), "YAML anchors and aliases"),
    ("not-utf8", b"models: [rn18-nt]\nname: \xff\xfe\x80\n", "is not UTF-8 text (byte 0xff at offset 24)"),
]


@pytest.mark.parametrize("contents,needle", [c[1:] for c in SUITE_CASES], ids=[c[0] for c in SUITE_CASES])
def test_bad_suite_is_one_line_and_exit_2(contents: str | bytes, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_bytes(contents if isinstance(contents, bytes) else contents.encode())
    db = tmp_path / "r.sqlite"
    proc = advbench("run", str(path), "--db", str(db))
    assert_one_line_error(proc, 2, needle)
    assert f"suite {path}" in proc.stderr  # the file is named
    assert not db.exists()  # nothing ran


GOOD_ENTRY = {"model": "rn18-nt", "dataset": "digits", "norm": "linf", "eps": 0.05, "attack": "fgsm", "accuracy": 0.5, "n": 40}


def baseline_with(**changes: object) -> str:
    return json.dumps({"entries": [{**GOOD_ENTRY, **changes}]})


# (id, baseline file contents, fragment of the one error line)
BASELINE_CASES = [
    ("random-bytes", bytes(range(256)) * 4, "is not UTF-8 text"),
    ("utf8-garbage", "}{ not json at all", "cannot read baseline"),
    ("accuracy-string", baseline_with(accuracy="0.5"), "entries[0]: 'accuracy' must be a number in [0, 1], got the string '0.5'"),
    ("accuracy-nan", baseline_with(accuracy=float("nan")), "'accuracy' must be a number in [0, 1], got the number nan"),
    ("accuracy-inf", baseline_with(accuracy=float("inf")), "'accuracy' must be a number in [0, 1], got the number inf"),
    ("accuracy-above-1", baseline_with(accuracy=1.5), "'accuracy' must be a number in [0, 1], got the number 1.5"),
    ("accuracy-negative", baseline_with(accuracy=-0.1), "'accuracy' must be a number in [0, 1]"),
    ("accuracy-bool", baseline_with(accuracy=True), "'accuracy' must be a number in [0, 1], got the boolean True"),
    ("eps-string", baseline_with(eps="0.05"), "'eps' must be a finite number >= 0, got the string '0.05'"),
    ("eps-nan", baseline_with(eps=float("nan")), "'eps' must be a finite number >= 0"),
    ("n-string", baseline_with(n="40"), "'n' must be a positive integer, got the string '40'"),
    ("n-zero", baseline_with(n=0), "'n' must be a positive integer"),
    ("seed-string", baseline_with(seed="0"), "'seed' must be an integer >= 0"),
    ("norm-unknown", baseline_with(norm="l3"), "'norm' must be one of linf, l2, l1, l0"),
    ("model-missing", json.dumps({"entries": [{k: v for k, v in GOOD_ENTRY.items() if k != "model"}]}), "entries[0]: 'model' is required"),
    ("n-missing", json.dumps({"entries": [{k: v for k, v in GOOD_ENTRY.items() if k != "n"}]}), "entries[0]: 'n' is required"),
    ("unknown-entry-key", baseline_with(acc=0.5), "entries[0]: unknown key(s) acc"),
    ("unknown-top-key", json.dumps({"entries": [GOOD_ENTRY], "tolerance": 5}), "unknown key(s) tolerance"),
    ("entries-empty", json.dumps({"entries": []}), "'entries' must be a non-empty list"),
    ("entries-missing", json.dumps({}), "'entries' is required"),
    ("top-level-list", json.dumps([GOOD_ENTRY]), 'must be a JSON object {"entries": [...]}'),
    ("entry-not-object", json.dumps({"entries": [1]}), "entries[0] must be an object, got the integer 1"),
    ("duplicate-entry", json.dumps({"entries": [GOOD_ENTRY, GOOD_ENTRY]}), "entries[1] repeats entries[0]"),
    ("duplicate-key", '{"entries": [], "entries": []}', "duplicate key 'entries'"),
]


@pytest.mark.parametrize("contents,needle", [c[1:] for c in BASELINE_CASES], ids=[c[0] for c in BASELINE_CASES])
def test_bad_baseline_is_one_line_and_exit_2(contents: str | bytes, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_bytes(contents if isinstance(contents, bytes) else contents.encode())
    before = path.read_bytes()
    proc = advbench("check", "--baseline", str(path), "--db", str(tmp_path / "r.sqlite"))
    assert_one_line_error(proc, 2, needle)
    assert f"baseline {path}" in proc.stderr
    assert path.read_bytes() == before


# (id, arguments, fragment of the one error line) for options that parse but make no sense
OPTION_CASES = [
    ("tolerance-nan", ["check", "--tolerance", "nan"], "--tolerance must be a finite number of points >= 0, got nan"),
    ("tolerance-inf", ["check", "--tolerance", "inf"], "--tolerance must be a finite number of points >= 0, got inf"),
    ("tolerance-negative", ["check", "--tolerance", "-1"], "--tolerance must be a finite number of points >= 0, got -1"),
    ("check-dataset-without-update", ["check", "--dataset", "digits"], "--dataset applies only with --update"),
    ("leaderboard-threat-nan", ["leaderboard", "--threat", "linf:nan"], "EPS a finite number >= 0"),
    ("leaderboard-threat-negative", ["leaderboard", "--threat", "linf:-0.1"], "EPS a finite number >= 0"),
    ("leaderboard-radius-nan", ["leaderboard", "--radius", "nan"], "--radius must be a finite number >= 0, got nan"),
    ("leaderboard-radius-negative", ["leaderboard", "--radius", "-1"], "--radius must be a finite number >= 0, got -1"),
    ("leaderboard-radius-inf", ["leaderboard", "--radius", "inf"], "--radius must be a finite number >= 0, got inf"),
    ("curve-huge-grid", ["curve", "--run", "x", "--eps", "0:1:0.0000001"], "is 1e+07 budgets; at most 1000"),
    ("curve-denormal-step", ["curve", "--run", "x", "--eps", "0:1:1e-320"], "is inf budgets; at most 1000"),
    ("curve-1001-budgets", ["curve", "--run", "x", "--eps", "0:1:0.001"], "is 1001 budgets; at most 1000"),
    ("curve-long-list", ["curve", "--run", "x", "--eps", ",".join(["0.1"] * 1001)], "is 1001 budgets; at most 1000"),
    ("curve-nan-step", ["curve", "--run", "x", "--eps", "0:1:nan"], "finite numbers >= 0; step > 0"),
    ("curve-inf-stop", ["curve", "--run", "x", "--eps", "0:inf:0.1"], "finite numbers >= 0; step > 0"),
    ("curve-negative-step", ["curve", "--run", "x", "--eps", "0:1:-0.1"], "finite numbers >= 0; step > 0"),
    ("curve-zero-step", ["curve", "--run", "x", "--eps", "0:1:0"], "finite numbers >= 0; step > 0"),
    ("curve-list-nan", ["curve", "--run", "x", "--eps", "0.1,nan"], "finite numbers >= 0"),
    ("curve-list-negative", ["curve", "--run", "x", "--eps", "-0.1,0.1"], "finite numbers >= 0"),
]


@pytest.mark.parametrize("args,needle", [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_bad_option_is_one_line_and_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(baseline_with())
    extra = ["--baseline", str(baseline)] if args[0] == "check" else ["--out", str(tmp_path / "curve")] if args[0] == "curve" else []
    db = tmp_path / "r.sqlite"
    started = time.perf_counter()
    proc = advbench(*args, *extra, "--db", str(db))
    assert_one_line_error(proc, 2, needle)
    assert time.perf_counter() - started < 60  # no 10-million-budget grid is built
    assert not db.exists() and not list(tmp_path.glob("curve*"))


def test_alias_bomb_is_refused_before_expansion(tmp_path: Path) -> None:
    """A billion-laughs suite (10^30 leaves) fails at its first anchor: fast and in bounded memory."""
    from advbench.core.errors import UsageError
    from advbench.engine.suite_schema import Suite

    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(UsageError, match="line 1: YAML anchors and aliases"):
        Suite.from_yaml(path)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 0.5 and peak < 5 * 2**20, (seconds, peak)
    # A bomb whose first anchor comes late (after 20,000 plain lines) is refused just as fast.
    late = tmp_path / "late.yaml"
    late.write_text("".join(f"k{i}: v\n" for i in range(20_000)) + alias_bomb())
    started = time.perf_counter()
    with pytest.raises(UsageError, match="line 20001: YAML anchors"):
        Suite.from_yaml(late)
    assert time.perf_counter() - started < 5


def test_yaml_1_2_floats_and_null_n_are_read_as_meant(tmp_path: Path) -> None:
    from advbench.engine.suite_schema import Suite

    path = tmp_path / "s.yaml"
    path.write_text("models: [m]\nattacks: [fgsm]\nn: null\nthreats: [{norm: LINF, eps: 1e-3}]\ncertify: {sigmas: 0.25, n: null}\n")
    suite = Suite.from_yaml(path)
    assert suite.n is None and suite.threats[0].eps == (0.001,) and suite.threats[0].norm == "linf"
    assert suite.certify.sigmas == (0.25,) and suite.certify.n is None


def test_shipped_ci_baseline_still_reads() -> None:
    """The shipped baseline reads, and baselines written before seeds were recorded keep working
    (their seed is not checked)."""
    from conftest import REPO

    from advbench.report.baseline import Baseline

    baseline = Baseline.from_json(REPO / "docs" / "suites" / "ci-baseline.json")
    assert len(baseline.entries) == 4 and {e.n for e in baseline.entries} == {200} and {e.seed for e in baseline.entries} == {0}
    legacy = json.loads((REPO / "docs" / "suites" / "ci-baseline.json").read_text())
    for entry in legacy["entries"]:
        entry.pop("seed")
    assert {e.seed for e in Baseline.from_data(legacy).entries} == {None}


def test_off_grid_radius_is_refused_not_read_as_zero() -> None:
    from advbench.core.errors import UsageError
    from advbench.report import leaderboard

    curve = {"radii": [0.0, 0.05, 0.1], "certified_accuracy": [0.9, 0.8, 0.7]}
    assert leaderboard._at_radius(curve, 0.05) == 0.8
    with pytest.raises(UsageError, match="radii 0, 0.05, ..., 0.1 only"):
        leaderboard._at_radius(curve, 0.12)


# The regression gate on a real database -------------------------------------------------------


@pytest.fixture(scope="module")
def gate_db(digits_zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from advbench.engine import EvalSpec, Runtime, run_eval

    db = tmp_path_factory.mktemp("gate") / "g.sqlite"
    run_eval(EvalSpec(model="rn18-nt", dataset="digits", attacks=("fgsm",), eps=(0.05,), n=40, seed=0, checks=False), Runtime(db=db, zoo=digits_zoo))
    return db


def db_digest(db: Path) -> str:
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        rows = [(t, sorted(map(repr, con.execute(f"SELECT * FROM {t}")))) for t in tables]  # table names from sqlite_master
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def check(baseline: Path, db: Path, *args: str):
    return advbench("check", "--baseline", str(baseline), "--db", str(db), *args)


def test_update_records_n_and_seed_and_refuses_to_write_nothing(gate_db: Path, tmp_path: Path) -> None:
    digest = db_digest(gate_db)
    baseline = tmp_path / "baseline.json"
    assert_one_line_error(advbench("check", "--update", "--dataset", "nosuch", "--baseline", str(baseline), "--db", str(gate_db)), 2,
                          "no finished evaluations on dataset 'nosuch' in the result database")
    assert not baseline.exists()
    done = advbench("check", "--update", "--dataset", "digits", "--baseline", str(baseline), "--db", str(gate_db))
    assert done.returncode == 0, done.stderr
    entries = json.loads(baseline.read_text())["entries"]
    assert {(e["attack"], e["n"], e["seed"]) for e in entries} == {("fgsm", 40, 0), ("worst case", 40, 0)}
    written = baseline.read_bytes()
    assert_one_line_error(advbench("check", "--update", "--dataset", "nosuch", "--baseline", str(baseline), "--db", str(gate_db)), 2, "was not written")
    assert baseline.read_bytes() == written  # an existing baseline is not emptied either
    assert check(baseline, gate_db).returncode == 0
    assert db_digest(gate_db) == digest


def edited(baseline: Path, tmp_path: Path, name: str, top: dict | None = None, **changes: object) -> Path:
    data = json.loads(baseline.read_text())
    data["entries"] = [{k: v for k, v in {**e, **changes}.items() if v is not None} for e in data["entries"]]
    out = tmp_path / name
    out.write_text(json.dumps({**data, **(top or {})}))
    return out


def test_gate_cannot_be_fooled(gate_db: Path, tmp_path: Path) -> None:
    digest = db_digest(gate_db)
    baseline = tmp_path / "baseline.json"
    assert advbench("check", "--update", "--baseline", str(baseline), "--db", str(gate_db)).returncode == 0
    # Another n, seed or dataset than the stored run's: refused, saying what differs.
    assert_one_line_error(check(edited(baseline, tmp_path, "n.json", n=200), gate_db), 2, "has n 40 (baseline 200)")
    assert_one_line_error(check(edited(baseline, tmp_path, "seed.json", seed=7), gate_db), 2, "has seed 0 (baseline 7)")
    assert_one_line_error(check(edited(baseline, tmp_path, "data.json", dataset="fashion-mnist"), gate_db), 2,
                          "the baseline's dataset is fashion-mnist, the stored runs are on digits")
    # A baseline written before seeds were recorded is still compared (n is still checked).
    assert check(edited(baseline, tmp_path, "old.json", seed=None), gate_db).returncode == 0
    # n and seed may be given once for all entries.
    assert check(edited(baseline, tmp_path, "top.json", {"n": 40, "seed": 0}, n=None, seed=None), gate_db).returncode == 0
    assert_one_line_error(check(edited(baseline, tmp_path, "top7.json", {"seed": 7}, seed=None), gate_db), 2, "has seed 0 (baseline 7)")
    # A much better baseline regresses; NaN or infinite tolerances cannot make it pass.
    better = edited(baseline, tmp_path, "better.json", accuracy=1.0)
    assert check(better, gate_db).returncode == 1
    for tolerance in ("nan", "inf", "-1"):
        assert_one_line_error(check(better, gate_db, "--tolerance", tolerance), 2, "--tolerance must be")
    assert check(better, gate_db, "--tolerance", "100").returncode == 0  # a finite tolerance is honoured
    # NaN accuracies used to compare as "no drop"; now the baseline is refused.
    nan = edited(baseline, tmp_path, "nan.json", accuracy=float("nan"))
    assert_one_line_error(check(nan, gate_db), 2, "'accuracy' must be a number in [0, 1], got the number nan")
    # An entry without a stored result fails (exit 1), never passes.
    data = json.loads(baseline.read_text())
    data["entries"].append({**data["entries"][0], "model": "kap-rn18"})
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps(data))
    proc = check(missing, gate_db)
    assert proc.returncode == 1 and "1 of 3 baseline entries have no stored result (first: kap-rn18 digits linf 0.05 fgsm)" in proc.stderr
    assert db_digest(gate_db) == digest  # no stored row lost or changed by any of this


def test_bad_suite_for_check_runs_nothing(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(GOOD_SUITE + "n: abc\n")
    baseline = tmp_path / "b.json"
    baseline.write_text(baseline_with())
    db = tmp_path / "r.sqlite"
    assert_one_line_error(advbench("check", "--suite", str(suite), "--baseline", str(baseline), "--db", str(db)), 2, "'n' must be a positive integer")
    assert not db.exists()
    # A bad baseline is refused before the (possibly hour-long) suite runs.
    baseline.write_text(baseline_with(accuracy="high"))
    suite.write_text(GOOD_SUITE)
    assert_one_line_error(advbench("check", "--suite", str(suite), "--baseline", str(baseline), "--db", str(db)), 2, "'accuracy' must be")
    assert not db.exists()
