"""`auto` is the default evaluation: honest models get `reliable`, and the numbers are worst cases
that resume and shard to identical rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from advbench.attacks import build_attack
from advbench.core.threat import ThreatModel
from advbench.engine import EvalSpec, Runtime, run_eval
from advbench.store import Store


def test_auto_is_the_default_attack() -> None:
    assert EvalSpec(model="rn18-nt").attacks == ("auto",)


@pytest.mark.parametrize("model,eps,compare", [("rn18-nt", 0.02, True), ("madry-cnn-at", 0.1, False)])
def test_honest_models_are_reliable_and_auto_is_at_least_as_strong_as_autoattack(model: str, eps: float, compare: bool, tmp_path: Path) -> None:
    """(AutoAttack on the adversarially trained model is tests/test_apgd.py's, on more samples.)"""
    n = 8 if compare else 32  # AutoAttack on a ResNet-18 costs ~3 s per robust image on a CPU
    outcome = run_eval(EvalSpec(model=model, eps=(eps,), n=n, check_n=n), Runtime(db=tmp_path / "r.sqlite", device="cpu"))
    assert outcome.verdict == "reliable", outcome.escalation
    if not compare:
        return
    with Store(tmp_path / "r.sqlite") as store:
        rows = [r for r in store.sample_rows(outcome.summary.run_id) if r["attack"] == "auto"]
        clean = {idx: label == pred for idx, label, pred in store.clean_rows(outcome.summary.run_id)}
    broken_by_auto = {r["sample_idx"] for r in rows if r["status"] == "attacked" and r["success"]}
    # AutoAttack (the authors' package, standard version) on the same samples.
    from advbench.data import load_dataset
    from advbench.models.card import load_model

    net, _ = load_model(model, "fashion-mnist")
    idx = torch.tensor(sorted(clean), dtype=torch.int64)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    aa = build_attack("autoattack")[1](net, data.images, data.labels, ThreatModel("linf", eps), idx, seed=0)
    broken_by_aa = {int(i) for i, ok, c in zip(idx, aa.success.tolist(), [clean[int(i)] for i in idx]) if ok and c}
    robust_auto = sum(clean.values()) - len(broken_by_auto)
    robust_aa = sum(clean.values()) - len(broken_by_aa)
    assert robust_auto <= robust_aa + 1  # one sample of slack
    assert outcome.summary.per_eps[0].worst_case <= robust_auto / n + 1e-9  # probes only lower it


class Interrupt(Exception):
    pass


def test_auto_resumes_to_identical_rows(digits_zoo: Path, tmp_path: Path) -> None:
    spec = EvalSpec(model="rn18-nt", dataset="digits", eps=(0.05, 0.1), n=48, check_n=16)

    def rows(db: Path) -> list[dict]:
        with Store(db) as store:
            (run,) = store.list_runs()
            return [{k: v for k, v in r.items() if k != "seconds"} for r in store.sample_rows(run.run_id)]

    run_eval(spec, Runtime(db=tmp_path / "whole.sqlite", zoo=digits_zoo, batch_size=48, device="cpu"))

    def stop(done: int, total: int) -> None:
        if done >= 16:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_eval(spec, Runtime(db=tmp_path / "resumed.sqlite", zoo=digits_zoo, batch_size=16, device="cpu"), progress=stop)
    resumed = run_eval(spec, Runtime(db=tmp_path / "resumed.sqlite", zoo=digits_zoo, batch_size=16, device="cpu"))
    assert resumed.resumed
    # Exact rows across batch sizes: on the CPU (on CUDA, kernels chosen per batch shape may round
    # differently; docs/gpu.md).
    assert rows(tmp_path / "resumed.sqlite") == rows(tmp_path / "whole.sqlite")


def test_the_checks_probe_attacks_count_toward_the_worst_case(digits_zoo: Path, tmp_path: Path) -> None:
    """A weak attack alone (FGSM) would overstate robustness; the checks' PGD probes on the same
    samples found more, and the summary is never above what any attack that ran found."""
    outcome = run_eval(EvalSpec(model="rn18-nt", dataset="digits", attacks=("fgsm",), eps=(0.1,), n=64, check_n=64),
                       Runtime(db=tmp_path / "r.sqlite", zoo=digits_zoo))
    e = outcome.summary.per_eps[0]
    assert e.broken_by_checks_only > 0
    # robust_after is cumulative, so its last entry holds every attack that ran (FGSM, and the
    # escalation's attacks where a check failed on this trained fixture).
    after_attacks = list(e.robust_after.values())[-1]
    assert e.worst_case == pytest.approx(after_attacks - e.broken_by_checks_only / 64)


def test_auto_gives_square_autoattacks_budget_where_gradients_go_through_bpda() -> None:
    """BPDA gradients are approximations: Square gets 5000 queries there, 500 elsewhere, none when asked for none."""
    from advbench.attacks.wrappers import AttackedModel
    from advbench.models.card import load_model

    pfe, _ = load_model("pfe-madry", "fashion-mnist")
    plain, _ = load_model("madry-cnn-at", "fashion-mnist")
    auto = build_attack("auto")[1]

    def square_queries(view: AttackedModel, attack=auto) -> int | None:
        stages = {s.name: s.attack for s in attack.stages(view)}
        return stages["square"].config.n_queries if "square" in stages else None

    assert pfe.has_bpda and not plain.has_bpda
    assert square_queries(AttackedModel(pfe)) == 5000
    assert square_queries(AttackedModel(pfe, bpda=False)) == 500  # attacked through the exact (masked) map
    assert square_queries(AttackedModel(plain)) == 500
    assert square_queries(AttackedModel(pfe), build_attack("auto:square_queries=0")[1]) is None
    assert square_queries(AttackedModel(pfe), build_attack("auto:bpda_square_queries=800")[1]) == 800


def test_the_checks_time_counts_in_the_runs_wall_time(digits_zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks are part of what an evaluation costs: `show` and the leaderboards' seconds include them."""
    import time

    from advbench.engine import adaptive

    real = adaptive.model_probes

    def slow_checks(plan, x, y, idx):
        time.sleep(1.0)
        return real(plan, x, y, idx)

    monkeypatch.setattr(adaptive, "model_probes", slow_checks)
    outcome = run_eval(EvalSpec(model="rn18-nt", dataset="digits", attacks=("fgsm",), eps=(0.1,), n=8, check_n=8),
                       Runtime(db=tmp_path / "r.sqlite", zoo=digits_zoo))
    with Store(tmp_path / "r.sqlite") as store:
        record = store.get_run(outcome.summary.run_id)
        config = record.config
    assert config["checks_seconds"] >= 1.0
    assert record.wall_seconds >= config["checks_seconds"]
