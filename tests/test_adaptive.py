"""Adaptive evaluation: EOT on random models, BPDA on non-differentiable ones, masking checks that notice."""

from __future__ import annotations

import pytest
import torch

from advbench.attacks import build_attack
from advbench.attacks.checks import (
    BLACK_BOX_VS_WHITE_BOX,
    CHECKS,
    LARGE_EPS,
    MORE_STEPS,
    SCALE_INVARIANT_LOSS,
    SINGLE_STEP_VS_ITERATIVE,
)
from advbench.engine.adaptive import check_shard
from advbench.engine.plan import EvalPlan
from advbench.core.threat import ThreatModel
from advbench.models.card import load_model
from advbench.models.smoothing import Smoothing
from advbench.models.wrapper import RobustModel
from advbench.train import config_for, train_model


@pytest.fixture(scope="module")
def digits_polarizer(tmp_path_factory):
    zoo = tmp_path_factory.mktemp("pfe")
    config = config_for("pfe-madry", dataset="digits", epochs=6, batch_size=64, crop_pad=0, flip=False, model_kwargs={"input_size": 8, "filters": 8})
    train_model(config, zoo / "digits", torch.device("cpu"))
    return load_model("pfe-madry", "digits", zoo)[0]


def robust_accuracy(model, x, y, threat, eot=None, bpda=None) -> float:
    _, attack, _ = build_attack("pgd")
    view = attack.view(model, eot, True if bpda is None else bpda)
    return 1 - attack(view, x, y, threat).success.float().mean().item()


def test_bpda_beats_plain_pgd_on_the_polarizing_front_end(digits_polarizer, digits_data) -> None:
    x, y = digits_data[0][:200], digits_data[1][:200]
    clean = (digits_polarizer.predict(x) == y).float().mean().item()
    threat = ThreatModel("linf", 0.2)
    plain = robust_accuracy(digits_polarizer, x, y, threat, bpda=False)
    adaptive = robust_accuracy(digits_polarizer, x, y, threat)
    print(f"polarizer on digits: clean {clean:.3f}, plain PGD {plain:.3f}, BPDA PGD {adaptive:.3f}")
    assert clean > 0.6
    assert adaptive < plain - 0.2


def test_eot_through_the_soft_surrogate_beats_plain_pgd_on_a_smoothed_model(digits_model, digits_data) -> None:
    smoothed = RobustModel(Smoothing(digits_model.net, sigma=0.25, samples=4, input_std=digits_model.std.flatten().tolist()),
                           digits_model.input_shape, 10, digits_model.mean.flatten().tolist(), digits_model.std.flatten().tolist(), name="smoothed")
    assert smoothed.stochastic
    x, y = digits_data[0][:50], digits_data[1][:50]
    threat = ThreatModel("linf", 0.1)
    plain = robust_accuracy(smoothed, x, y, threat, eot=1, bpda=False)  # gradients of a hard vote are zero
    adaptive = robust_accuracy(smoothed, x, y, threat)  # defaults: 20 EOT draws, soft surrogate
    print(f"smoothed digits model: plain PGD {plain:.3f}, EOT+BPDA PGD {adaptive:.3f}")
    assert adaptive < plain - 0.2


def test_masking_checks_flag_a_masked_evaluation_and_pass_an_adaptive_one(digits_polarizer, digits_data) -> None:
    x, y = digits_data[0][:60], digits_data[1][:60]
    threat = ThreatModel("linf", 0.2)

    def checked(bpda: bool):
        plan = EvalPlan.from_objects(digits_polarizer, x, y, attacks=("pgd",), eps=(threat.eps,), bpda=bpda, checks=True, device="cpu")
        return check_shard(plan, list(range(len(x))))

    masked, escalated = checked(bpda=False)
    failed = {r.name for r in masked.results if not r.passed}
    assert failed & {LARGE_EPS, BLACK_BOX_VS_WHITE_BOX}, masked.results
    assert "square:n_queries=5000" in escalated.labels  # the remedy: a gradient-free attack on what is left
    adaptive, same = checked(bpda=True)
    assert LARGE_EPS not in {r.name for r in adaptive.results if not r.passed}, adaptive.results
    assert adaptive.numbers[LARGE_EPS] <= 0.05


def test_every_check_has_a_remedy_and_a_name_constant() -> None:
    import advbench.attacks.checks as checks

    constants = {v for k, v in vars(checks).items() if k.isupper() and isinstance(v, str)}
    assert len(CHECKS) >= 8
    for name in CHECKS:
        check = CHECKS.get(name)
        assert name in constants, f"check {name} has no name constant"
        assert check.remedy.change and (check.remedy.attacks or check.remedy.random or check.remedy.log_outputs)
        for spec in check.remedy.attacks:
            build_attack(spec)  # a remedy names attacks that exist
    with pytest.raises(ValueError, match="no remedy"):
        checks.Check("no-remedy", checks.PROBE, "nothing", 0.0, checks.Remedy(""))


def test_engine_records_adaptations_and_check_results(digits_zoo, tmp_path) -> None:
    from dataclasses import replace

    from advbench.engine import EvalSpec, Runtime, run_eval
    from advbench.store import Store

    db = tmp_path / "r.sqlite"
    config = EvalSpec(model="rn18-nt", dataset="digits", attacks=("pgd", "fgsm"), eps=(0.05,), n=60, check_n=40)
    runtime = Runtime(db=db, zoo=digits_zoo)
    outcome = run_eval(config, runtime)
    with Store(db) as store:
        run = store.get_run(outcome.summary.run_id)
    assert run.config["adaptations"]["pgd"] == {"eot_draws": 1, "bpda": False, "stochastic_model": False}
    assert set(run.summary["checks"]) >= {LARGE_EPS, BLACK_BOX_VS_WHITE_BOX, SCALE_INVARIANT_LOSS, SINGLE_STEP_VS_ITERATIVE, MORE_STEPS}
    assert run.warnings == outcome.warnings
    # The adaptation is part of the run's identity: forcing EOT starts a new run.
    assert [c.name for c in outcome.checks] == [c["name"] for c in run.summary["check_results"]]
    assert all(isinstance(c.passed, bool) and c.why for c in outcome.checks)
    forced = run_eval(replace(config, eot=2), runtime)
    assert forced.summary.run_id != outcome.summary.run_id


def test_checks_on_a_model_that_classifies_no_checked_sample(digits_data, tmp_path) -> None:
    """No checked sample is classified correctly: the probes have nothing to attack (was an
    IndexError in the large-eps probe)."""
    import advbench

    x, y = digits_data
    keep = (y != 0).nonzero().view(-1)[:8]
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.nn.functional.one_hot(torch.tensor(0), 10).float())
    ev = advbench.evaluate(net, x[keep], y[keep], "linf:0.1", "fgsm", check_n=8, num_classes=10, db=tmp_path / "r.sqlite")
    assert ev.summary.clean_accuracy == 0.0 and ev.summary.per_eps[0].worst_case == 0.0
