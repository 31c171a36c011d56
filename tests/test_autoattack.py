"""AutoAttack through advbench agrees exactly with calling pyautoattack directly.

`run` must return pyautoattack's x_adv bit for bit (torch.equal). `__call__` then projects into
the eps-ball and [0,1], which can move coordinates by float rounding (x + (x_adv - x) is not
always x_adv), so there we pin: x_adv == threat.project(x, pyautoattack's x_adv) exactly, within
1e-6 of it, and predictions, per-sample success and robust accuracy exactly equal.
"""

from __future__ import annotations

import logging

import pytest
import torch
from pyautoattack import AutoAttack

from advbench.attacks import ATTACKS, build_attack
from advbench.attacks import autoattack as aa_module
from advbench.core.errors import UsageError
from advbench.core.threat import ThreatModel

AA_NORM = {"linf": "Linf", "l2": "L2", "l1": "L1"}
VARIANTS = [name for name in ATTACKS.names() if ATTACKS.get(name).cls.__module__ == aa_module.__name__]


def direct(model, x, y, threat: ThreatModel, seed: int, version: str = "custom", attacks=None, **settings):
    """pyautoattack called as its README-style user would: same model, eps, seed, whole batch."""
    aa = AutoAttack(model, norm=AA_NORM[threat.norm.value], eps=threat.eps, version=version, attacks=attacks, device=x.device, seed=seed)
    for path, value in settings.items():  # e.g. apgd__n_restarts=1 -> aa.apgd.n_restarts = 1
        obj, attr = path.split("__")
        setattr(getattr(aa, obj), attr, value)
    return aa.run_standard_evaluation(x, y, batch_size=len(x))


def assert_agrees(spec: str, model, x, y, threat: ThreatModel, seed: int, direct_kwargs: dict) -> None:
    x_direct, y_direct = direct(model, x, y, threat, seed, **direct_kwargs)
    attack = build_attack(spec)[1]
    ran = run_spy(attack)
    result = attack(model, x, y, threat, torch.arange(len(x)), seed)
    assert torch.equal(ran["x_adv"], x_direct), f"{spec}: run() differs from pyautoattack"
    assert torch.equal(result.steps, torch.zeros(len(x), dtype=torch.int64))
    assert torch.equal(result.x_adv, threat.project(x, x_direct))
    assert (result.x_adv - x_direct).abs().max().item() <= 1e-6
    assert torch.equal(result.adv_pred, y_direct)
    assert torch.equal(result.success, y_direct != y)
    assert (~result.success).sum().item() == (y_direct == y).sum().item()  # robust accuracy, as counts


def run_spy(attack) -> dict:
    """Make `attack.run` keep its output (before the base class projects it) in the returned dict."""
    ran: dict = {}
    run = attack.run

    def spy(*args):
        ran["x_adv"], steps = run(*args)
        return ran["x_adv"].clone(), steps

    attack.run = spy
    return ran


@pytest.fixture(scope="module")
def digits_batch(digits_data):
    x, y = digits_data
    return x[:8], y[:8]  # at Linf 0.1 / L2 0.5 two of these survive APGD-CE


CASES = [
    ("apgd-ce", "linf", 0.2, {"attacks": ["apgd-ce"]}),  # AutoAttack's custom default: 5 restarts
    ("apgd-ce:n_restarts=2", "l2", 0.5, {"attacks": ["apgd-ce"], "apgd__n_restarts": 2}),
    ("apgd-ce:n_restarts=1", "l1", 2.0, {"attacks": ["apgd-ce"], "apgd__n_restarts": 1}),
    ("apgd-t:n_target_classes=2", "linf", 0.1, {"attacks": ["apgd-t"], "apgd_targeted__n_target_classes": 2}),
    ("fab-t:n_target_classes=2", "l2", 0.5, {"attacks": ["fab-t"], "fab__n_target_classes": 2}),
    ("square-aa:n_queries=300", "linf", 0.1, {"attacks": ["square"], "square__n_queries": 300}),
    ("autoattack:version=rand,eot_iter=1", "linf", 0.1, {"version": "rand", "apgd__eot_iter": 1}),
    ("autoattack:version=plus,n_restarts=1", "linf", 0.2, {"version": "plus", "apgd__n_restarts": 1}),
]


@pytest.mark.parametrize("spec,norm,eps,direct_kwargs", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_digits_equals_pyautoattack(digits_model, digits_batch, spec, norm, eps, direct_kwargs):
    x, y = digits_batch
    assert_agrees(spec, digits_model, x, y, ThreatModel(norm, eps), 7, direct_kwargs)


def test_standard_version_equals_pyautoattack(digits_model, digits_data):
    """Version standard, as shipped, on a few images. APGD-CE breaks all of them at this eps, so
    the ensemble stops there: with survivors, APGD-T, FAB-T (9 targets each) and Square (5000
    queries) take over a minute per call on a 2-core CPU; each has its own equality test above."""
    x, y = digits_data
    assert_agrees("autoattack", digits_model, x[:4], y[:4], ThreatModel("linf", 0.2), 0, {"version": "standard"})


def test_fashion_rn18_equals_pyautoattack():
    """The shipped Fashion-MNIST rn18-nt, 8 images, APGD-CE (1 restart: what standard runs)."""
    from advbench.data import load_dataset, select_indices
    from advbench.data.registry import dataset_labels
    from advbench.models.card import load_model

    model, _ = load_model("rn18-nt", "fashion-mnist")
    idx = select_indices(dataset_labels("fashion-mnist"), 8, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    threat = ThreatModel("linf", 0.03)
    assert_agrees("apgd-ce:n_restarts=1", model, data.images, data.labels, threat, 0, {"attacks": ["apgd-ce"], "apgd__n_restarts": 1})


CHEAP = {"apgd-ce": "apgd-ce:n_restarts=1", "apgd-t": "apgd-t:n_target_classes=1", "fab-t": "fab-t:n_target_classes=1", "square-aa": "square-aa:n_queries=100"}


# Budgets at which APGD-CE breaks these images, so the standard ensemble ends early.
@pytest.mark.parametrize("norm,eps", [("linf", 0.2), ("l2", 1.0), ("l1", 4.0)])
@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_stays_in_ball(digits_model, digits_data, name, norm, eps):
    x, y = digits_data
    x, y = x[:4], y[:4]
    threat = ThreatModel(norm, eps)
    result = build_attack(CHEAP.get(name, name))[1](digits_model, x, y, threat, seed=1)
    assert bool((result.distance <= eps * (1 + 1e-6)).all())
    assert 0.0 <= result.x_adv.min().item() and result.x_adv.max().item() <= 1.0
    clean_wrong = digits_model.predict(x) != y
    assert bool((result.success | ~clean_wrong).all())  # misclassified inputs stay misclassified


def test_variants_registered():
    assert set(VARIANTS) == {"autoattack", "apgd-ce", "apgd-t", "fab-t", "square-aa"}
    for name in VARIANTS:
        assert ATTACKS.get(name).norms == ("linf", "l2", "l1")


def test_rand_version_on_stochastic_model(digits_data):
    from advbench.models.registry import MODELS
    from advbench.models.wrapper import RobustModel

    torch.manual_seed(0)
    model = RobustModel(MODELS.get("cpni-w").build(in_channels=1, num_classes=10), (1, 8, 8), 10, name="cpni-w")
    assert model.stochastic
    x = digits_data[0][:4]
    y = model.predict(x)  # untrained: labels it (mostly) predicts, so there is something to attack
    threat = ThreatModel("linf", 0.05)
    attack = build_attack("autoattack:version=rand,eot_iter=1")[1]
    ran = run_spy(attack)
    result = attack(model.reseed(0), x, y, threat, seed=3)
    first = ran["x_adv"]
    assert bool((result.distance <= 0.05 * (1 + 1e-6)).all())
    # The global RNG is seeded inside and the model's own draws restart with `reseed`: a random
    # model's run repeats exactly.
    with model.reseed(0).attack_mode():
        again, _ = attack.run(model, x, y, threat, torch.arange(4), 3)
    assert torch.equal(first, again)


def test_no_side_effects(digits_model, digits_data, caplog, capsys):
    """The caller's RNG is untouched; pyautoattack's messages go to our logger at DEBUG, not stdout."""
    x, y = digits_data
    torch.manual_seed(123)
    before = torch.get_rng_state()
    with caplog.at_level(logging.DEBUG, logger=aa_module.__name__):
        build_attack("apgd-ce:n_restarts=1")[1](digits_model, x[:4], y[:4], ThreatModel("linf", 0.1), seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    ours = [r for r in caplog.records if r.name == aa_module.__name__]
    assert ours and all(r.levelno == logging.DEBUG for r in ours)
    assert any("apgd-ce" in r.getMessage() for r in ours)
    assert not [r for r in caplog.records if r.name == "auto-attack"]
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


@pytest.mark.parametrize("spec", ["autoattack:version=fast", "apgd-ce:n_restarts=0", "autoattack:eot_iter=0", "square-aa:n_queries=-1"])
def test_bad_configs(spec):
    with pytest.raises(UsageError):
        build_attack(spec)


def test_too_many_targets(digits_model, digits_data):
    x, y = digits_data
    with pytest.raises(UsageError, match="n_target_classes"):
        build_attack("apgd-t:n_target_classes=10")[1](digits_model, x[:2], y[:2], ThreatModel("linf", 0.1))


def test_auto_version_picks_rand_for_random_models(digits_model):
    from advbench.models.registry import MODELS
    from advbench.models.wrapper import RobustModel

    attack = build_attack("autoattack")[1]
    assert attack.adaptations(attack.view(digits_model))["autoattack_version"] == "standard"
    noisy = RobustModel(MODELS.get("cpni-w").build(in_channels=1, num_classes=10), (1, 8, 8), 10, name="cpni-w")
    assert attack.adaptations(attack.view(noisy))["autoattack_version"] == "rand" and attack.version(noisy) == "rand"
    forced = build_attack("autoattack:version=standard")[1]
    assert forced.adaptations(forced.view(noisy))["autoattack_version"] == "standard"
