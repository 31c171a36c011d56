"""Native APGD and the `auto` ensemble: as strong as the authors' code, batch-independent, in the ball."""

from __future__ import annotations

import pytest
import torch
from flip_model import flip_model

from advbench.attacks import build_attack
from advbench.attacks.apgd import APGD, APGDConfig, checkpoints
from advbench.attacks.auto import Auto, AutoConfig
from advbench.core.errors import UsageError
from advbench.core.threat import Norm, ThreatModel
from advbench.models.smoothing import Smoothing
from advbench.models.wrapper import RobustModel

CHEAP_AUTO = "auto:ce_steps=10,t_steps=10,targets=2,square_queries=50"


def robust(result) -> float:
    return float((~result.success).float().mean())


def test_checkpoints_follow_the_reference_schedule() -> None:
    # p_0 = 0, p_1 = 0.22, p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06): 22, 41, 57, 70, 80, 87, 93, 99.
    assert checkpoints(100) == {22: 22, 41: 19, 57: 16, 70: 13, 80: 10, 87: 7, 93: 6, 99: 6}
    assert list(checkpoints(50))[:3] == [11, 21, 30]
    assert checkpoints(1) == {1: 1}


@pytest.mark.parametrize("threat", [ThreatModel(Norm.LINF, 0.06), ThreatModel(Norm.L2, 0.5)], ids=lambda t: t.label())
def test_apgd_ce_as_strong_as_autoattacks(digits_model, digits_data, threat: ThreatModel) -> None:
    """Ours against pyautoattack's APGD-CE at the same budget (its default: 5 restarts of 100 steps)."""
    x, y = digits_data[0][:150], digits_data[1][:150]
    idx = torch.arange(len(x))
    ours = build_attack("apgd:restarts=5")[1](digits_model, x, y, threat, idx, seed=0)
    theirs = build_attack("apgd-ce")[1](digits_model, x, y, threat, idx, seed=0)
    print(f"{threat.label()}: robust accuracy ours {robust(ours):.3f}, pyautoattack apgd-ce {robust(theirs):.3f}")
    assert robust(ours) <= robust(theirs) + 0.02
    both = int((ours.success & theirs.success).sum())
    assert both >= 0.9 * int(theirs.success.sum()), "most of what theirs breaks, ours breaks"
    assert 0 < int(theirs.success.sum()) < len(x)  # an informative budget


def test_auto_as_strong_as_autoattack_on_an_adversarially_trained_model() -> None:
    """`auto` (defaults) against AutoAttack standard on the shipped madry-cnn-at, Linf 0.1."""
    from advbench.data import load_dataset, select_indices
    from advbench.data.registry import dataset_labels
    from advbench.models.card import load_model

    model, _ = load_model("madry-cnn-at", "fashion-mnist")
    idx = select_indices(dataset_labels("fashion-mnist"), 32, seed=0)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    x, y = data.images, data.labels
    threat = ThreatModel(Norm.LINF, 0.1)
    ours = build_attack("auto")[1](model, x, y, threat, idx, seed=0)
    theirs = build_attack("autoattack:version=standard")[1](model, x, y, threat, idx, seed=0)
    print(f"madry-cnn-at linf 0.1, {len(x)} images: auto {robust(ours):.3f}, autoattack {robust(theirs):.3f}")
    assert robust(ours) <= robust(theirs) + 0.01
    assert robust(theirs) < float((model.predict(x) == y).float().mean())  # the budget breaks some


@pytest.mark.parametrize(
    "spec,threat",
    [
        ("apgd:steps=20", ThreatModel(Norm.LINF, 0.05)),
        ("apgd:steps=15,loss=dlr", ThreatModel(Norm.L2, 0.4)),
        ("apgd:steps=15,loss=dlr-targeted,n_target_classes=3,restarts=2", ThreatModel(Norm.L2, 0.4)),
        (CHEAP_AUTO, ThreatModel(Norm.LINF, 0.05)),
    ],
)
def test_results_do_not_depend_on_the_batch(digits_model, digits_data, spec: str, threat: ThreatModel) -> None:
    x, y = digits_data[0][:20], digits_data[1][:20]
    idx = torch.arange(20)
    attack = build_attack(spec)[1]
    whole = attack(digits_model, x, y, threat, idx, seed=5)
    first = attack(digits_model, x[:10], y[:10], threat, idx[:10], seed=5)
    second = attack(digits_model, x[10:], y[10:], threat, idx[10:], seed=5)
    # Bit for bit along Linf sign steps; L2 steps carry the last-bit differences that a CPU's
    # multi-threaded convolutions make between batch sizes, so there the points agree closely.
    parts = torch.cat([first.x_adv, second.x_adv])
    assert torch.equal(whole.x_adv, parts) if threat.norm is Norm.LINF else torch.allclose(whole.x_adv, parts, atol=1e-4)
    assert torch.equal(whole.steps, torch.cat([first.steps, second.steps]))
    assert torch.equal(whole.success, torch.cat([first.success, second.success]))
    assert 0 < int(whole.success.sum()) < 20  # an informative budget
    other = attack(digits_model, x, y, threat, idx, seed=6)
    assert not torch.equal(other.x_adv, whole.x_adv)  # the seed matters


@pytest.mark.parametrize("threat", [ThreatModel(Norm.LINF, 0.1), ThreatModel(Norm.LINF, 0.3), ThreatModel(Norm.L2, 0.5), ThreatModel(Norm.L2, 2.0)], ids=lambda t: t.label())
@pytest.mark.parametrize("spec", ["apgd:steps=10", "apgd:steps=10,loss=dlr-targeted,n_target_classes=2,early_stop=false", CHEAP_AUTO])
def test_every_point_in_the_ball_and_box(digits_model, digits_data, threat: ThreatModel, spec: str) -> None:
    x, y = digits_data[0][:60], digits_data[1][:60]
    attack = build_attack(spec)[1]
    run = attack.run_staged
    raw: dict = {}

    def spy(*args, **options):  # what the attack itself returns, before the base class projects it
        raw["x_adv"], steps, stages = run(*args, **options)
        return raw["x_adv"].clone(), steps, stages

    attack.run_staged = spy
    result = attack(digits_model, x, y, threat)
    for x_adv in (raw["x_adv"], result.x_adv):
        assert float(ThreatModel(threat.norm, 0).distance(x, x_adv).max()) <= threat.eps * (1 + 1e-6) + 1e-7
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert torch.equal(result.x_adv, raw["x_adv"])  # already inside: returned bit for bit
    assert torch.equal(result.success, digits_model.predict(result.x_adv) != y)


def test_early_stopping_changes_nothing_but_the_cost(digits_model, digits_data) -> None:
    x, y = digits_data
    threat = ThreatModel(Norm.LINF, 0.06)
    fast = build_attack("apgd:steps=20")[1](digits_model, x, y, threat)
    full = build_attack("apgd:steps=20,early_stop=false")[1](digits_model, x, y, threat)
    assert torch.equal(fast.success, full.success)
    assert 0 < int(fast.success.sum()) < len(y)
    assert int(fast.steps.sum()) < int(full.steps.sum())
    assert int(full.steps.max()) == 20


def test_auto_stages_only_attack_what_is_left(digits_model, digits_data) -> None:
    """Later stages add to what APGD-CE broke, never lose it; zero budgets drop stages."""
    x, y = digits_data[0][:80], digits_data[1][:80]
    threat = ThreatModel(Norm.LINF, 0.06)
    ce = build_attack("auto:ce_steps=20,targets=0,square_queries=0,boundary_margin=0")[1](digits_model, x, y, threat, seed=1)
    alone = build_attack("apgd:steps=20")[1](digits_model, x, y, threat, seed=0)
    everything = build_attack("auto:ce_steps=20,t_steps=20,targets=3,square_queries=200,boundary_margin=0")[1](digits_model, x, y, threat, seed=1)
    assert not bool((ce.success & ~everything.success).any())
    assert abs(robust(ce) - robust(alone)) <= 0.05  # the first stage is plain APGD-CE (another seed)
    assert int(everything.steps.max()) <= 20 + 2 * 3 * 20 + 200  # targets ranked at x and at stage 1's point: up to 6
    clean_ranked = build_attack("auto:ce_steps=20,t_steps=20,targets=3,square_queries=200,target_ranking=clean,boundary_margin=0")[1](digits_model, x, y, threat, seed=1)
    assert int(clean_ranked.steps.max()) <= 20 + 3 * 20 + 200


class Scores:
    """A stand-in model whose logits are its input rows (for target ranking)."""

    num_classes = 5

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_auto_targets_are_the_union_of_both_rankings_each_once() -> None:
    y = torch.tensor([0, 1, 2])
    clean = torch.tensor([[9.0, 5, 4, 3, 1], [1, 9, 2, 3, 4], [0, 1, 9, 3, 2]])
    attacked = torch.tensor([[9.0, 1, 2, 5, 4], [1, 9, 2, 3, 4], [3, 0, 9, 1, 2]])
    both = Auto(AutoConfig(targets=2)).target_classes(Scores(), clean, attacked, y)
    # row 0: attacked ranks 3, 4; clean ranks 1, 2 -> interleaved, attacked first; row 1: both rank 4, 3
    assert both.tolist() == [[3, 1, 4, 2], [4, 3, -1, -1], [0, 3, 4, -1]]
    only = Auto(AutoConfig(targets=2, target_ranking="attacked")).target_classes(Scores(), clean, attacked, y)
    assert only.tolist() == [[3, 4], [4, 3], [0, 4]]
    with pytest.raises(UsageError, match="target_ranking"):
        AutoConfig(target_ranking="nearest")


def test_auto_breaks_what_either_ranking_alone_breaks(digits_model, digits_data) -> None:
    """A target's run starts from a point keyed by (sample, class), not by its rank, so the union
    of both rankings repeats every run either ranking alone makes: it breaks a superset."""
    x, y = digits_data[0][:360], digits_data[1][:360]
    threat = ThreatModel(Norm.LINF, 0.05)
    spec = "auto:ce_steps=2,t_steps=3,targets=4,square_queries=0,boundary_margin=0"  # with starts keyed by rank, one image here fails it
    both = build_attack(spec)[1](digits_model, x, y, threat, seed=3).success
    for ranking in ("clean", "attacked"):
        alone = build_attack(f"{spec},target_ranking={ranking}")[1](digits_model, x, y, threat, seed=3).success
        assert not bool((alone & ~both).any()), ranking
    ce_only = build_attack("auto:ce_steps=2,targets=0,square_queries=0,boundary_margin=0")[1](digits_model, x, y, threat, seed=3).success
    assert int(both.sum()) > int(ce_only.sum())  # the targeted stage is not idle here


def test_auto_boundary_targets_are_the_classes_stage_two_left() -> None:
    y = torch.tensor([0, 1])
    attacked = torch.tensor([[9.0, 5, 4, 3, 1], [1, 9, 2, 3, 4]])
    tried = torch.tensor([[1, 3], [4, -1]])
    every = Auto(AutoConfig()).boundary_classes(Scores(), attacked, y, tried)
    assert every.tolist() == [[2, 4, -1], [3, 2, 0]]  # likeliest at the attacked point first
    assert Auto(AutoConfig(boundary_targets=2)).boundary_classes(Scores(), attacked, y, tried).tolist() == [[2, 4], [3, 2]]


def test_auto_boundary_stage_spends_only_on_survivors_near_the_boundary(digits_model, digits_data) -> None:
    """Stage 4 attacks only what the earlier stages left with a margin below `boundary_margin`
    of its clean margin; a sample's run does not depend on which others were chosen."""
    x, y = digits_data[0][:200], digits_data[1][:200]
    # Earlier stages weak enough to leave the boundary stage work on any trained fixture (conftest.py).
    threat = ThreatModel(Norm.LINF, 0.08)
    spec = "auto:ce_steps=1,t_steps=1,targets=1,square_queries=0,boundary_steps=10"
    without = build_attack(f"{spec},boundary_margin=0")[1](digits_model, x, y, threat, seed=2)
    near = build_attack(f"{spec},boundary_margin=0.3")[1](digits_model, x, y, threat, seed=2)
    every = build_attack(f"{spec},boundary_margin=1")[1](digits_model, x, y, threat, seed=2)
    assert not bool((without.success & ~near.success).any()) and not bool((near.success & ~every.success).any())
    assert int(every.success.sum()) > int(without.success.sum())  # the stage is not idle here
    spent_near, spent_every = near.steps > without.steps, every.steps > without.steps
    assert not bool((spent_near & ~spent_every).any())
    assert 0 < int(spent_near.sum()) < int(spent_every.sum())
    assert not bool((spent_every & without.success).any())  # only on survivors
    model_margin = margin_of(digits_model, without.x_adv[spent_near], y[spent_near]) / margin_of(digits_model, x[spent_near], y[spent_near])
    assert float(model_margin.max()) < 0.3 + 1e-6


def margin_of(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x)
    return logits.gather(1, y.view(-1, 1)).squeeze(1) - logits.scatter(1, y.view(-1, 1), float("-inf")).amax(1)


def test_apgd_targets_given_per_sample_and_minus_one_skips(digits_model, digits_data) -> None:
    x, y = digits_data[0][:6], digits_data[1][:6]
    threat = ThreatModel(Norm.LINF, 0.01)  # too small to break most: every target runs its steps
    attack = APGD(APGDConfig(steps=5, loss="dlr-targeted", early_stop=False))
    view = attack.view(digits_model)
    targets = torch.full((6, 2), -1)
    targets[:3, 0] = (y[:3] + 1) % 10
    targets[:2, 1] = (y[:2] + 2) % 10
    _, steps = attack.run(view, x, y, threat, torch.arange(6), seed=0, targets=targets)
    correct = digits_model.predict(x) == y
    assert (steps[:2][correct[:2]] == 10).all() and (steps[2:3][correct[2:3]] == 5).all()
    assert (steps[3:] == 0).all()


def test_random_model_runs_every_step_with_eot(digits_model, digits_data) -> None:
    """On a model random at inference one lucky pass proves nothing: a sample stops only where a
    vote confirms its point wrong; the others run every step, EOT draws and votes counted."""
    smoothed = RobustModel(Smoothing(digits_model.net, sigma=0.25, samples=2, input_std=digits_model.std.flatten().tolist()),
                           digits_model.input_shape, 10, digits_model.mean.flatten().tolist(), digits_model.std.flatten().tolist(), name="smoothed")
    assert smoothed.stochastic
    x, y = digits_data[0][:12], digits_data[1][:12]
    threat = ThreatModel(Norm.LINF, 0.1)
    attack = build_attack("apgd:steps=4")[1]
    result = attack(attack.view(smoothed, eot_draws=2), x, y, threat)
    assert result.draws is not None  # judged by votes
    # Unbroken samples ran all 4 steps of 2 draws, plus any nominations' votes (16, 32, 64 or 128 draws).
    kept = result.steps[~result.success]
    assert len(kept) and bool(((kept >= 8) & (kept % 16 == 8)).all())
    no_early = attack.view(smoothed, eot_draws=2)
    unstopped = type(attack)(type(attack.config)(**{**attack.config.__dict__, "early_stop": False}))
    assert torch.equal(unstopped(no_early, x, y, threat).steps, torch.full((12,), 8))
    assert float(result.distance.max()) <= 0.1 + 1e-6
    auto = build_attack("auto:ce_steps=3,t_steps=2,targets=1,square_queries=100")[1]
    # AutoAttack rand's stages on random models (no Square), with auto's own EOT draws.
    assert [s.name for s in auto.stages(auto.view(smoothed))] == ["apgd-ce", "apgd-dlr"]
    # A smoothed pass averages its M copies already: `smoothed_eot` draws; other random models
    # (the flip model draws once per pass) get `random_eot`; an explicit count wins over both.
    assert smoothed.averaged_copies == 2 and flip_model().averaged_copies == 1
    assert auto.view(smoothed).eot_draws == auto.config.smoothed_eot != auto.config.random_eot
    assert auto.view(flip_model()).eot_draws == auto.config.random_eot
    assert auto.view(smoothed, 3).eot_draws == 3
    assert build_attack("auto:smoothed_eot=4")[1].view(smoothed).eot_draws == 4
    near = build_attack("auto:ce_steps=3,t_steps=2,targets=1,square_queries=100,boundary_margin=0.25,random_stages=ce+dlr-targeted")[1]
    assert [s.name for s in near.stages(near.view(smoothed))] == ["apgd-ce", "apgd-t", "apgd-t-boundary"]


def test_zero_eps_changes_nothing(digits_model, digits_data) -> None:
    x, y = digits_data[0][:10], digits_data[1][:10]
    for spec in ("apgd", CHEAP_AUTO):
        result = build_attack(spec)[1](digits_model, x, y, ThreatModel(Norm.LINF, 0.0))
        assert torch.equal(result.x_adv, x)


@pytest.mark.parametrize(
    "spec",
    [
        "apgd:steps=0", "apgd:restarts=0", "apgd:loss=cw", "apgd:loss=ce-targeted", "apgd:n_target_classes=0",
        "apgd:rho=0", "apgd:rho=1.5", "apgd:alpha=0", "apgd:alpha=2", "apgd:rho=nan", "apgd:steps=ten", "apgd:eps=0.1",
        "auto:ce_steps=0", "auto:t_steps=0", "auto:ce_restarts=0", "auto:targets=-1", "auto:square_queries=-1", "auto:steps=5",
        "auto:boundary_margin=1.5", "auto:boundary_margin=-0.1", "auto:boundary_steps=0", "auto:boundary_targets=-1",
        "auto:random_eot=0", "auto:smoothed_eot=0",
    ],
)
def test_bad_configs(spec: str) -> None:
    with pytest.raises(UsageError):
        build_attack(spec)


@pytest.mark.parametrize("spec", ["apgd", "auto"])
def test_unsupported_norm(digits_model, digits_data, spec: str) -> None:
    with pytest.raises(UsageError):
        build_attack(spec)[1](digits_model, digits_data[0][:2], digits_data[1][:2], ThreatModel(Norm.L1, 1.0))
