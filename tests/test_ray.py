"""Sharding over Ray (`--ray`): a local Ray instance with two CPUs, the shipped rn18-nt on Fashion-MNIST.

Sharded runs must store exactly the per-sample rows of single-process runs (timings aside), resume
after losing shards, and `--ray` without Ray installed must say how to install it.
"""

from __future__ import annotations

from types import SimpleNamespace

import logging
import sqlite3
from pathlib import Path

import pytest
from test_cli import advbench, assert_one_line_error

from advbench.engine import EvalSpec, Runtime, run_eval
from advbench.engine.certify import run_certify
from advbench.engine.spec import CertifySpec
from advbench.store import Store

# One worker runs every Ray test (pytest-xdist --dist loadgroup): two local Ray instances on two
# cores would only fight over them.
pytestmark = pytest.mark.xdist_group("ray")
PGD = EvalSpec(model="rn18-nt", attacks=("fgsm", "pgd:steps=5"), eps=(0.02, 0.05), n=64, check_n=16)
CERT = CertifySpec(model="rn18-nt", sigmas=(0.25, 0.5), n0=20, noise_draws=200, n=12)


def runtime(db: Path, ray: str | None = None, batch_size: int = 16) -> Runtime:
    """On the CPU, locally and on the workers: the tests compare rows bit for bit."""
    return Runtime(db=db, batch_size=batch_size, ray=ray, device="cpu")


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'advbench[ray]' (make setup installs it)")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


def _without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def _eval_rows(db: Path, run_id: str) -> tuple[list, list, dict | None, str]:
    with Store(db) as store:
        run = store.get_run(run_id)
        return store.clean_rows(run_id), _without_seconds(store.sample_rows(run_id)), run.summary["checks"], run.status


def test_sharded_pgd_equals_single_process_and_resumes(ray_local, tmp_path: Path) -> None:
    single = run_eval(PGD, runtime(tmp_path / "single.sqlite"))
    progress: list[tuple[int, int]] = []
    sharded = run_eval(PGD, runtime(tmp_path / "ray.sqlite", "local"), progress=lambda d, t: progress.append((d, t)))
    want = _eval_rows(tmp_path / "single.sqlite", single.summary.run_id)
    got = _eval_rows(tmp_path / "ray.sqlite", sharded.summary.run_id)
    main_rows = [r for r in want[1] if not r["attack"].startswith("check:")]  # the checks' probe rows come on top
    assert len(want[0]) == 64 and len(main_rows) == 64 * 2 * 2
    assert got == want  # clean rows, every attack row, the masking checks' numbers, status
    assert sharded.summary.per_eps == single.summary.per_eps
    assert progress[0] == (0, 64) and progress[-1] == (64, 64) and len(progress) == 1 + 64 // 16  # one bar, one step per shard

    # Lose two shards' rows (as a crash would) and run again: only they are redone, with the same rows.
    db = tmp_path / "ray.sqlite"
    with sqlite3.connect(db) as conn:
        lost = [r[0] for r in conn.execute("SELECT sample_idx FROM clean ORDER BY sample_idx LIMIT 32")]
        marks = ",".join("?" * len(lost))
        conn.execute(f"DELETE FROM clean WHERE sample_idx IN ({marks})", lost)
        # A crash loses whole batches; the checks' probe rows were committed when the run started.
        conn.execute(f"DELETE FROM samples WHERE sample_idx IN ({marks}) AND attack NOT LIKE 'check:%'", lost)
        conn.execute("UPDATE runs SET status = 'running'")
    progress.clear()
    again = run_eval(PGD, runtime(db, "local"), progress=lambda d, t: progress.append((d, t)))
    assert again.resumed and not again.already_finished and again.summary.run_id == sharded.summary.run_id
    assert progress[0] == (32, 64) and progress[-1] == (64, 64)
    assert _eval_rows(db, again.summary.run_id) == want


def test_sharded_certification_equals_single_process_and_resumes(ray_local, tmp_path: Path) -> None:
    single = run_certify(CERT, runtime(tmp_path / "single.sqlite", batch_size=200))
    # Another batch size on the workers: no certificate depends on it (counter-based noise).
    sharded = run_certify(CERT, runtime(tmp_path / "ray.sqlite", "local", batch_size=50))
    with Store(tmp_path / "single.sqlite") as a, Store(tmp_path / "ray.sqlite") as b:
        want = _without_seconds(a.certificate_rows(single.run_id))
        assert len(want) == 12 * 2
        assert _without_seconds(b.certificate_rows(sharded.run_id)) == want
    assert sharded.curves == single.curves

    # Lose one sigma of some samples: the resumed run certifies just those, identically.
    db = tmp_path / "ray.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM certificates WHERE sigma = 0.5 AND sample_idx IN (SELECT sample_idx FROM certificates ORDER BY sample_idx LIMIT 10)")
        conn.execute("UPDATE runs SET status = 'running'")
    progress: list[tuple[int, int]] = []
    again = run_certify(CERT, runtime(db, "local", batch_size=1000), progress=lambda d, t: progress.append((d, t)))
    assert progress[0][0] < 24 and progress[-1] == (24, 24)
    with Store(db) as store:
        assert _without_seconds(store.certificate_rows(again.run_id)) == want


def test_dead_workers_are_retried_and_worker_errors_come_back_as_themselves(ray_local, tmp_path: Path) -> None:
    from advbench.core.errors import CheckpointError
    from advbench.engine.executors import RayExecutor

    builds = tmp_path / "builds"

    def build_plan() -> str:  # a worker builds its plan once, and again only when it was restarted
        with open(builds, "a") as f:
            f.write("x")
        return "plan"

    def dies_once(plan: str, shard: tuple[str, int]) -> tuple[str, int]:
        import os

        marker, value = shard
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies, as on a lost node or an OOM kill
        return plan, value

    got: list = []
    plan = SimpleNamespace(rebuild=build_plan)  # what the executor reads of a plan: how a worker rebuilds it
    executor = RayExecutor("local", "cpu", workers=1)
    executor.map(dies_once, plan, [(str(tmp_path / "died"), 7), (str(tmp_path / "died"), 8)], got.append)
    assert got == [("plan", 7), ("plan", 8)] and (tmp_path / "died").exists()
    assert builds.read_text() == "xx"  # one build, one rebuild after the crash: not one per shard
    executor.close()

    def tampered(plan: str, shard: tuple) -> None:
        raise CheckpointError("sha256 mismatch")

    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        RayExecutor("local", "cpu").map(tampered, plan, [()], got.append)


def test_suite_over_ray_from_the_cli(ray_local, tmp_path: Path) -> None:
    """`advbench run --ray local` end to end, in its own process with its own Ray instance."""
    suite = tmp_path / "tiny.yaml"
    suite.write_text(
        "name: tiny\nn: 16\nbatch_size: 8\nmodels: [rn18-nt]\nattacks: ['pgd:steps=2']\nthreats:\n  - {norm: linf, eps: [0.05]}\n"
        "checks: false\ncertify: {sigmas: [0.25], n0: 10, noise_draws: 50, n: 4, batch_size: 50}\n"
    )
    proc = advbench("run", str(suite), "--db", str(tmp_path / "suite.sqlite"), "--ray", "local")
    assert proc.returncode == 0, proc.stderr
    with Store(tmp_path / "suite.sqlite") as store:
        runs = store.list_runs()
        assert sorted(r.kind for r in runs) == ["certify", "eval"] and {r.status for r in runs} == {"finished"}
        assert {r.device for r in runs} == {"ray"}
        eval_run = next(r for r in runs if r.kind == "eval")
        assert len(store.clean_rows(eval_run.run_id)) == 16


def test_ray_flag_without_ray_installed_says_how_to_install(tmp_path: Path) -> None:
    blocker = tmp_path / "noray"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('No module named ray')\n")
    for command in (["eval", "--model", "rn18-nt", "--n", "8"], ["certify", "--model", "rn18-nt", "--n", "2"]):
        proc = advbench(*command, "--db", str(tmp_path / "x.sqlite"), "--ray", "local", env_extra={"PYTHONPATH": str(blocker)})
        assert_one_line_error(proc, 2, "Ray is not installed: pip install 'advbench[ray]'")
    assert not (tmp_path / "x.sqlite").exists()  # nothing was started or written


def test_sharded_default_evaluation_equals_single_process(ray_local, tmp_path: Path) -> None:
    """`auto` with its checks (which ran first, as one more shard) shards to the same rows and verdict."""
    spec = EvalSpec(model="rn18-nt", eps=(0.02,), n=16, check_n=8)
    single = run_eval(spec, runtime(tmp_path / "single.sqlite", batch_size=8))
    sharded = run_eval(spec, runtime(tmp_path / "ray.sqlite", "local", batch_size=8))
    assert _eval_rows(tmp_path / "ray.sqlite", sharded.summary.run_id) == _eval_rows(tmp_path / "single.sqlite", single.summary.run_id)
    assert sharded.verdict == single.verdict and sharded.adaptations == single.adaptations


RANDOM = EvalSpec(model="pni-w", attacks=("pgd:steps=3",), eps=(0.05,), n=16, checks=False, eot=2)


def _voted_rows(db: Path, run_id: str) -> tuple[list, list, dict]:
    with Store(db) as store:
        return store.clean_rows(run_id), _without_seconds(store.sample_rows(run_id)), store.clean_votes(run_id)


def test_a_random_models_votes_equal_across_batch_sizes_shards_and_resumes(ray_local, tmp_path: Path) -> None:
    """pni-w (noise on the weights, random at inference): every point judged by a vote; the votes'
    draws are keyed per input, so batching, Ray shards and a resume change no row."""
    single = run_eval(RANDOM, runtime(tmp_path / "single.sqlite", batch_size=16))
    want = _voted_rows(tmp_path / "single.sqlite", single.summary.run_id)
    assert len(want[2]) == 16 and all(draws >= 16 for _, draws in want[2].values())  # clean votes
    assert all(r["draws"] >= 16 for r in want[1] if r["status"] == "attacked")
    small = run_eval(RANDOM, runtime(tmp_path / "small.sqlite", batch_size=5))
    assert _voted_rows(tmp_path / "small.sqlite", small.summary.run_id) == want
    db = tmp_path / "ray.sqlite"
    sharded = run_eval(RANDOM, runtime(db, "local", batch_size=4))
    assert _voted_rows(db, sharded.summary.run_id) == want
    with sqlite3.connect(db) as conn:
        lost = [r[0] for r in conn.execute("SELECT sample_idx FROM clean ORDER BY sample_idx LIMIT 8")]
        marks = ",".join("?" * len(lost))
        conn.execute(f"DELETE FROM clean WHERE sample_idx IN ({marks})", lost)
        conn.execute(f"DELETE FROM samples WHERE sample_idx IN ({marks})", lost)
        conn.execute("UPDATE runs SET status = 'running'")
    again = run_eval(RANDOM, runtime(db, batch_size=3))
    assert again.resumed and _voted_rows(db, again.summary.run_id) == want
    assert again.summary.per_eps[0].expected_robust == single.summary.per_eps[0].expected_robust
