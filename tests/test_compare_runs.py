"""scripts/compare_runs.py: the per-sample comparison of two stored runs that docs/notes/zoo.md quotes."""

from pathlib import Path

from conftest import load_script

from advbench.store.sqlite import Store

META = {"model": "m", "dataset": "d", "n_samples": 4, "seed": 0, "indices_hash": "h", "checkpoint_sha256": "c", "device": "cpu", "package_version": "0"}


def row(idx: int, attack: str, label: int, clean_pred: int, success: int | None, eps: float = 0.1) -> dict:
    status = "attacked" if clean_pred == label else "misclassified"
    return {"sample_idx": idx, "attack": attack, "eps": eps, "status": status, "label": label, "clean_pred": clean_pred, "success": success}


def test_compare_counts_robust_samples_over_every_attack_of_each_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    with Store(db) as store:
        for run in ("a", "b"):
            store.create_run(run, run, META, {})
        # a: 0 robust, 1 broken, 2 misclassified, 3 robust (4 only in a: not shared)
        store.write_batch("a", [], [row(0, "pgd", 1, 1, 0), row(1, "pgd", 1, 1, 1), row(2, "pgd", 1, 2, None), row(3, "pgd", 1, 1, 0), row(4, "pgd", 1, 1, 0)])
        # b: 0 broken by its second attack only, 1 robust, 2 robust, 3 robust; rows at another eps do not count
        store.write_batch("b", [], [
            row(0, "auto", 1, 1, 0), row(0, "check:square", 1, 1, 1), row(1, "auto", 1, 1, 0), row(2, "auto", 1, 1, 0),
            row(3, "auto", 1, 1, 0), row(3, "auto", 1, 1, 1, eps=0.2),
        ])
    counts = load_script("compare_runs").compare(str(db), "a", "b", 0.1)
    assert counts == {"shared": 4, "robust_a": 2, "robust_b": 3, "only_a": 1, "only_b": 2, "both": 1}


def test_compare_reads_the_second_run_from_another_store(tmp_path: Path) -> None:
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    with Store(first) as store:
        store.create_run("a", "a", META, {})
        store.write_batch("a", [], [row(0, "pgd", 1, 1, 0), row(1, "pgd", 1, 1, 0), row(2, "pgd", 1, 1, 1)])
    with Store(second) as store:
        # the same run id in the other store: each side is read from its own store
        store.create_run("a", "a", META, {})
        store.write_batch("a", [], [row(0, "transfer", 1, 1, 1), row(1, "transfer", 1, 1, 0), row(2, "transfer", 1, 1, 0)])
    counts = load_script("compare_runs").compare(str(first), "a", "a", 0.1, db_b=str(second))
    assert counts == {"shared": 3, "robust_a": 2, "robust_b": 2, "only_a": 1, "only_b": 1, "both": 1}
