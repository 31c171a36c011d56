"""The engine and the store: every sample stored, interrupted runs resume to identical rows."""

from pathlib import Path

import pytest

from advbench.engine import EvalSpec, Runtime, run_eval
from advbench.store import Store

RUNTIME_KEYS = {"batch_size", "device", "db", "zoo", "fresh"}


def config(zoo: Path, db: Path, **kw) -> tuple[EvalSpec, Runtime]:
    # The checks are off: these tests are about the store (tests/test_masked_models.py covers them).
    base = dict(model="rn18-nt", attacks=("fgsm", "pgd:steps=5"), eps=(0.05, 0.2), dataset="digits", n=120, batch_size=32, device="cpu", db=str(db), zoo=str(zoo),
                checks=False)
    merged = {**base, **kw}
    spec = EvalSpec(**{k: v for k, v in merged.items() if k not in RUNTIME_KEYS})
    return spec, Runtime(**{k: v for k, v in merged.items() if k in RUNTIME_KEYS})


class Interrupt(Exception):
    pass


def test_every_sample_attack_eps_is_stored(digits_zoo: Path, tmp_path: Path) -> None:
    outcome = run_eval(*config(digits_zoo, tmp_path / "r.sqlite"))
    s = outcome.summary
    with Store(tmp_path / "r.sqlite") as store:
        rows = store.sample_rows(s.run_id)
        run = store.get_run(s.run_id)
    assert len(rows) == 120 * 2 * 2
    assert run.status == "finished" and run.n_samples == 120 and run.wall_seconds > 0
    assert run.libraries["torch"] and run.checkpoint_sha256 and run.indices_hash
    for e in s.per_eps:
        # Later attacks only ever lower the robust accuracy; worst case is the last.
        assert e.robust_after["fgsm"] >= e.robust_after["pgd:steps=5"] == e.worst_case
        assert e.worst_case <= s.clean_accuracy
    assert s.per_eps[0].worst_case >= s.per_eps[1].worst_case
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert skipped and all(r["attack"] == "pgd:steps=5" for r in skipped)  # pgd skipped what fgsm broke


def test_interrupted_run_resumes_to_identical_rows(digits_zoo: Path, tmp_path: Path) -> None:
    reference = run_eval(*config(digits_zoo, tmp_path / "ref.sqlite"))
    db = tmp_path / "resume.sqlite"
    calls = []

    def die_after_two_batches(done: int, total: int) -> None:
        calls.append(done)
        if done >= 64:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_eval(*config(digits_zoo, db), progress=die_after_two_batches)
    with Store(db) as store:
        (run,) = store.list_runs()
        assert run.status == "running" and len(store.done_samples(run.run_id)) == 64
    resumed = run_eval(*config(digits_zoo, db))
    assert resumed.resumed and not resumed.already_finished and resumed.summary.run_id == run.run_id
    with Store(db) as a, Store(tmp_path / "ref.sqlite") as b:
        strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
        assert strip(a.sample_rows(run.run_id)) == strip(b.sample_rows(reference.summary.run_id))
    assert resumed.summary.per_eps == reference.summary.per_eps
    # A third call finds the finished run and re-attacks nothing.
    again = run_eval(*config(digits_zoo, db))
    assert again.already_finished and again.summary.per_eps == reference.summary.per_eps


def test_batch_size_does_not_change_results(digits_zoo: Path, tmp_path: Path) -> None:
    a = run_eval(*config(digits_zoo, tmp_path / "a.sqlite", batch_size=120))
    b = run_eval(*config(digits_zoo, tmp_path / "b.sqlite", batch_size=17))
    assert a.summary.per_eps == b.summary.per_eps


def test_fresh_starts_a_new_run(digits_zoo: Path, tmp_path: Path) -> None:
    db = tmp_path / "f.sqlite"
    first = run_eval(*config(digits_zoo, db, n=40))
    second = run_eval(*config(digits_zoo, db, n=40, fresh=True))
    assert second.summary.run_id != first.summary.run_id and not second.resumed


def test_variants_of_one_attack_chain_under_their_labels(digits_zoo: Path, tmp_path: Path) -> None:
    from advbench.core.errors import UsageError

    outcome = run_eval(*config(digits_zoo, tmp_path / "v.sqlite", attacks=("pgd:steps=2", "pgd:steps=10,restarts=2"), n=40))
    assert outcome.summary.attacks == ["pgd:steps=2", "pgd:restarts=2,steps=10"]
    with pytest.raises(UsageError, match="once per run"):
        run_eval(*config(digits_zoo, tmp_path / "v.sqlite", attacks=("pgd:steps=2", "pgd:steps=2")))
