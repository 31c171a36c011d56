"""Foolbox-2-style eps searches (fgsm-search, pgd-search): what they find, and what their failures mean."""

import pytest
import torch

from advbench.attacks import build_attack
from advbench.core.errors import UsageError
from advbench.core.threat import Norm, ThreatModel
from advbench.engine.suite import load_suite, suite_cells
from advbench.models.wrapper import RobustModel

N = 80


@pytest.fixture(scope="module")
def digits(digits_model, digits_data):
    x, y = digits_data
    return digits_model, x[:N], y[:N]


def test_fgsm_search_finds_the_first_grid_eps_that_fgsm_breaks(digits) -> None:
    """Brute force: plain FGSM at every grid eps; the search keeps each sample's smallest fooling one."""
    model, x, y = digits
    grid = [i / 25 for i in range(1, 26)]
    found = build_attack("fgsm-search:epsilons=25")[1].minimize(model, x, y, Norm.LINF)
    fooled = torch.stack([build_attack("fgsm")[1](model, x, y, ThreatModel(Norm.LINF, e)).success for e in grid])  # (eps, sample)
    correct = model.predict(x) == y
    assert torch.equal(found.success[correct], fooled[:, correct].any(0))
    first = torch.tensor(grid)[fooled.int().argmax(0)]
    hit = found.success & correct
    # Linf distance is the grid eps itself (some pixel always moves by the full step before clipping).
    torch.testing.assert_close(found.min_distance[hit], first[hit])
    assert bool(hit.any())


def test_pgd_search_grows_the_budget_and_keeps_earlier_successes(digits) -> None:
    model, x, y = digits
    one = build_attack("pgd-search:steps=5,tries=1,epsilon=0.02,stepsize=0.005")[1].minimize(model, x, y, Norm.LINF)
    three = build_attack("pgd-search:steps=5,tries=3,epsilon=0.02,stepsize=0.005")[1].minimize(model, x, y, Norm.LINF)
    # The first try is identical in both (same seed, same budget 0.02); later tries only add successes.
    assert bool((three.success | ~one.success).all())
    assert float(one.min_distance[one.success].max()) <= 0.02 + 1e-6
    assert float(three.min_distance[three.success].max()) <= 0.02 * 1.5**2 + 1e-6
    assert int(three.success.sum()) > int(one.success.sum())


class SaturatedSoftmax(torch.nn.Module):
    """The same classifier with logits scaled so far that softmax saturates: the CE gradient is 0."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * 1e4


def test_search_failures_measure_gradient_masking_not_robustness(digits) -> None:
    """Why Table-1-style 'failure shares' are reported beside fixed-eps PGD with a margin loss:
    on a saturated softmax the CE searches fail everywhere while PGD on the margin breaks it."""
    model, x, y = digits
    masked = RobustModel(SaturatedSoftmax(model.net), model.input_shape, model.num_classes, model.mean.flatten().tolist(), model.std.flatten().tolist())
    assert torch.equal(masked.predict(x), model.predict(x))
    correct = masked.predict(x) == y
    for spec in ("fgsm-search:epsilons=50", "pgd-search:steps=5,tries=3,random_start=false"):
        result = build_attack(spec)[1].minimize(masked, x, y, Norm.LINF)
        assert not bool(result.success[correct].any()), spec
    margin = build_attack("pgd:loss=cw,steps=20")[1](masked, x, y, ThreatModel(Norm.LINF, 0.3))
    assert float(margin.success[correct].float().mean()) > 0.5


def test_bad_search_configs() -> None:
    for spec in ("fgsm-search:epsilons=0", "fgsm-search:max_epsilon=2", "pgd-search:growth=1", "pgd-search:tries=0", "pgd-search:epsilon=-1"):
        with pytest.raises(UsageError):
            build_attack(spec)


def test_suite_threats_can_name_their_own_attacks(tmp_path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "models: [m]\nattacks: [fgsm]\nthreats:\n  - {norm: linf, eps: [1.0], attacks: [fgsm-search, deepfool]}\n  - {norm: l2, eps: [1000]}\n"
    )
    loaded = load_suite(suite)
    assert loaded.threats == (("linf", (1.0,), ("fgsm-search", "deepfool")), ("l2", (1000.0,), ("fgsm",)))
    suite.write_text("models: [m]\nthreats:\n  - {norm: l2, eps: [1000]}\n")
    assert load_suite(suite).threats == (("l2", (1000.0,), ("auto",)),)  # no attacks named: the default evaluation
    suite.write_text("models: [m]\ncheck_n: 24\nthreats:\n  - {norm: l2, eps: [1000]}\n")
    assert load_suite(suite).check_n == 24 and loaded.check_n == 100  # the checks' images, as `eval --check-n`
    assert {spec.check_n for *_, spec in suite_cells(load_suite(suite))} == {24}
    suite.write_text("models: [m]\nattacks: []\nthreats:\n  - {norm: l2, eps: [1000]}\n")
    with pytest.raises(UsageError, match="attacks"):
        load_suite(suite)
