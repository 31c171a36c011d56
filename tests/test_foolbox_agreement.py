"""Native FGSM / PGD agree with Foolbox 3 on the shipped Fashion-MNIST model (>= 500 images)."""

import foolbox as fb
import pytest
import torch

from advbench.attacks import build_attack
from advbench.core.threat import Norm, ThreatModel
from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models.card import load_model

N = 500
CASES = [
    # (our spec, foolbox attack, norm, eps): same steps and step size on both sides.
    ("fgsm", fb.attacks.LinfFastGradientAttack(random_start=False), Norm.LINF, 0.01),
    ("pgd:steps=20,rel_stepsize=0.125", fb.attacks.LinfPGD(steps=20, rel_stepsize=0.125, random_start=True), Norm.LINF, 0.01),
    ("pgd:steps=20,rel_stepsize=0.125", fb.attacks.L2PGD(steps=20, rel_stepsize=0.125, random_start=True), Norm.L2, 0.2),
]


@pytest.fixture(scope="module")
def fmnist_setup():
    model, _ = load_model("rn18-nt", "fashion-mnist")
    idx = select_indices(dataset_labels("fashion-mnist"), N, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    return model, data.images, data.labels, idx


@pytest.mark.parametrize("spec,fb_attack,norm,eps", CASES, ids=["fgsm-linf", "pgd-linf", "pgd-l2"])
def test_native_attack_matches_foolbox(fmnist_setup, spec, fb_attack, norm, eps) -> None:
    model, x, y, idx = fmnist_setup
    torch.manual_seed(0)  # foolbox draws its random start from the global generator
    fmodel = fb.PyTorchModel(model, bounds=(0, 1), device="cpu")
    _, clipped, fb_success = fb_attack(fmodel, x, y, epsilons=eps)
    fb_robust = 1.0 - fb_success.float().mean().item()
    _, attack, _ = build_attack(spec)
    ours = attack(model, x, y, ThreatModel(norm, eps), idx, seed=0)
    our_robust = 1.0 - ours.success.float().mean().item()
    clean = (model.predict(x) == y).float().mean().item()
    print(f"{spec} {norm.value} eps={eps}: clean {clean:.4f}, advbench {our_robust:.4f}, foolbox {fb_robust:.4f}")
    assert clean > 0.85
    assert 0.02 < fb_robust < clean - 0.1, "eps should make the comparison informative"
    assert abs(our_robust - fb_robust) <= 0.02, f"advbench {our_robust:.3f} vs foolbox {fb_robust:.3f}"


def test_pgd_breaks_the_undefended_fashion_mnist_model_at_linf_0_3(fmnist_setup) -> None:
    model, x, y, idx = fmnist_setup
    _, attack, _ = build_attack("pgd")
    result = attack(model, x, y, ThreatModel(Norm.LINF, 0.3), idx, seed=0)
    assert 1.0 - result.success.float().mean().item() <= 0.05
