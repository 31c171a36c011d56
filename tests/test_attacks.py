import pytest
import torch

from advbench.attacks import ATTACKS, build_attack
from advbench.core.errors import UnknownNameError, UsageError
from advbench.core.threat import Norm, ThreatModel

THREATS = [ThreatModel(Norm.LINF, 0.1), ThreatModel(Norm.LINF, 0.3), ThreatModel(Norm.L2, 0.5), ThreatModel(Norm.L2, 2.0)]


@pytest.mark.parametrize("threat", THREATS, ids=lambda t: t.label())
@pytest.mark.parametrize("spec", ["pgd", "pgd:restarts=2,steps=5", "fgsm", "pgd:random_start=false"])
def test_result_inside_ball_and_box(digits_model, digits_data, threat: ThreatModel, spec: str) -> None:
    x, y = digits_data
    _, attack, _ = build_attack(spec)
    result = attack(digits_model, x, y, threat)
    delta = (result.x_adv - x).flatten(1)
    norms = delta.abs().amax(1) if threat.norm is Norm.LINF else delta.norm(dim=1)
    assert float(norms.max()) <= threat.eps + 1e-6
    assert float(result.x_adv.min()) >= 0.0 and float(result.x_adv.max()) <= 1.0
    torch.testing.assert_close(result.distance, norms)
    # Success is recomputed by a clean forward pass.
    assert torch.equal(result.success, digits_model.predict(result.x_adv) != y)


@pytest.mark.parametrize("name", [n for n in ATTACKS.names() if ATTACKS.get(n).cls.__module__ == "advbench.attacks.gradient"])
def test_every_gradient_attack_lowers_accuracy(digits_model, digits_data, name: str) -> None:
    x, y = digits_data
    clean = float((digits_model.predict(x) == y).float().mean())
    _, attack, _ = build_attack(name)
    result = attack(digits_model, x, y, ThreatModel(Norm.LINF, 0.3))
    robust = float((~result.success).float().mean())
    assert clean > 0.6
    assert robust < clean - 0.2


def test_pgd_breaks_undefended_model_at_large_eps(digits_model, digits_data) -> None:
    x, y = digits_data
    _, attack, _ = build_attack("pgd")
    result = attack(digits_model, x, y, ThreatModel(Norm.LINF, 0.3))
    assert float((~result.success).float().mean()) <= 0.05


def test_early_stopping_leaves_robust_accuracy_unchanged(digits_model, digits_data) -> None:
    x, y = digits_data
    threat = ThreatModel(Norm.LINF, 0.08)
    _, fast, _ = build_attack("pgd:steps=10")
    _, full, _ = build_attack("pgd:steps=10,early_stop=false")
    a, b = fast(digits_model, x, y, threat), full(digits_model, x, y, threat)
    assert torch.equal(a.success, b.success)
    assert 0 < int(a.success.sum()) < len(y)  # an informative budget
    assert int(a.steps.sum()) < int(b.steps.sum())  # and early stopping saved work


def test_restarts_never_hurt(digits_model, digits_data) -> None:
    x, y = digits_data
    threat = ThreatModel(Norm.L2, 0.6)
    one = build_attack("pgd:steps=5")[1](digits_model, x, y, threat)
    three = build_attack("pgd:steps=5,restarts=3")[1](digits_model, x, y, threat)
    assert bool((one.success & ~three.success).sum() == 0)
    assert int(three.success.sum()) >= int(one.success.sum())


def test_random_start_depends_on_sample_index_not_batch(digits_model, digits_data) -> None:
    x, y = digits_data
    threat = ThreatModel(Norm.LINF, 0.05)
    _, attack, _ = build_attack("pgd:steps=3,early_stop=false")
    idx = torch.arange(len(y))
    whole = attack(digits_model, x, y, threat, idx, seed=3)
    part = attack(digits_model, x[10:30], y[10:30], threat, idx[10:30], seed=3)
    torch.testing.assert_close(part.x_adv, whole.x_adv[10:30], rtol=0, atol=1e-5)


def test_zero_eps_changes_nothing(digits_model, digits_data) -> None:
    x, y = digits_data
    result = build_attack("pgd")[1](digits_model, x, y, ThreatModel(Norm.LINF, 0.0))
    assert torch.equal(result.x_adv, x)


def test_bad_specs() -> None:
    with pytest.raises(UnknownNameError, match="pgd"):
        build_attack("pgdd")
    with pytest.raises(UsageError, match="unknown option"):
        build_attack("pgd:stepz=3")
    with pytest.raises(UsageError, match="valid int"):
        build_attack("pgd:steps=many")
    with pytest.raises(UsageError):
        build_attack("pgd:steps=0")


@pytest.mark.parametrize("eps,norm", [(-0.1, Norm.LINF), (1.5, Norm.LINF), (float("nan"), Norm.L2), (-1, Norm.L2)])
def test_bad_eps(eps: float, norm: Norm) -> None:
    with pytest.raises(UsageError):
        ThreatModel(norm, eps)


def test_wrong_input_shape(digits_model) -> None:
    with pytest.raises(UsageError, match="expects inputs"):
        build_attack("pgd")[1](digits_model, torch.rand(2, 3, 8, 8), torch.zeros(2, dtype=torch.long), ThreatModel(Norm.LINF, 0.1))


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0), ("l1", 4.0)])
@pytest.mark.parametrize("loss", ["ce", "cw", "dlr"])
def test_pgd_norms_and_losses_stay_in_the_ball(digits_model, digits_data, norm: str, eps: float, loss: str) -> None:
    x, y = digits_data[0][:100], digits_data[1][:100]
    _, attack, _ = build_attack(f"pgd:loss={loss}")
    threat = ThreatModel(norm, eps)
    result = attack(digits_model, x, y, threat)
    assert (threat.distance(x, result.x_adv) <= eps * (1 + 1e-5)).all()
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    assert result.success.float().mean() > 0.3  # these budgets break a good share of an undefended model


def test_l1_projection_is_the_euclidean_projection() -> None:
    from advbench.core.threat import project_l1

    torch.manual_seed(0)
    delta = torch.randn(4, 1, 3, 3)
    projected = project_l1(delta, 1.0)
    assert torch.allclose(projected.flatten(1).abs().sum(1), torch.ones(4), atol=1e-5)
    # Optimality: no random point of the ball is closer to delta.
    for _ in range(200):
        other = project_l1(torch.randn(4, 1, 3, 3), 1.0)
        assert ((delta - projected).flatten(1).norm(dim=1) <= (delta - other).flatten(1).norm(dim=1) + 1e-6).all()


def test_multi_targeted_is_at_least_as_strong_as_one_pgd_run(digits_model, digits_data) -> None:
    x, y = digits_data[0][:150], digits_data[1][:150]
    threat = ThreatModel("linf", 0.05)
    pgd = build_attack("pgd:loss=cw")[1](digits_model, x, y, threat).success.float().mean()
    multi = build_attack("multi-targeted:targets=3")[1](digits_model, x, y, threat).success.float().mean()
    assert multi >= pgd - 0.02


def test_transfer_from_the_model_itself_equals_white_box_pgd(digits_model, digits_data) -> None:
    x, y = digits_data[0][:100], digits_data[1][:100]
    threat = ThreatModel("linf", 0.05)
    label, transfer, config = build_attack("transfer:pgd", surrogate="rn18-nt")
    assert label == "transfer:pgd" and config["surrogate"] == "rn18-nt"
    from advbench.attacks.wrappers import TransferModel, view_for

    composite = TransferModel(digits_model, view_for(digits_model, True), "rn18-nt")
    assert torch.equal(transfer(composite, x, y, threat).success, build_attack("pgd")[1](digits_model, x, y, threat).success)
    with pytest.raises(UsageError, match="TransferModel"):
        transfer(digits_model, x, y, threat)  # the attack holds no model: the surrogate is model-side
    with pytest.raises(UsageError, match="surrogate"):
        build_attack("transfer:pgd")


def test_eot_averages_draws_and_is_chosen_for_random_models(digits_model) -> None:
    from advbench.models.noise import GaussianNoise
    from advbench.models.wrapper import RobustModel

    _, attack, _ = build_attack("pgd")
    assert attack.adaptations(attack.view(digits_model)) == {"eot_draws": 1, "bpda": False, "stochastic_model": False}
    noisy_net = torch.nn.Sequential(GaussianNoise(0.0, inference_sigma=0.5), torch.nn.Flatten(), torch.nn.Linear(64, 10))
    noisy = RobustModel(noisy_net, (1, 8, 8), 10)
    assert attack.adaptations(attack.view(noisy))["eot_draws"] == 20
    assert attack.adaptations(attack.view(noisy, eot_draws=1))["eot_draws"] == 1
    assert not hasattr(attack, "eot_draws")  # the attack object is never changed by a model
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    from advbench.attacks.losses import loss_and_grad
    from advbench.attacks.wrappers import AttackedModel

    # For a linear model with additive input noise the CE gradient's EOT mean converges: 200
    # draws are far closer to 400 draws than one draw is.
    one = loss_and_grad(AttackedModel(noisy, 1), x, y).grad
    many = loss_and_grad(AttackedModel(noisy, 200), x, y).grad
    more = loss_and_grad(AttackedModel(noisy, 400), x, y).grad
    assert (many - more).norm() < 0.5 * (one - more).norm()
