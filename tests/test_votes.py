"""Votes judge random models: on a model whose P(correct) is known at every input (flip_model)."""

from __future__ import annotations

import torch
from flip_model import flip_model, inputs_with_p, true_p_correct
from scipy.stats import binom
from torch import nn

import advbench
from advbench.attacks.apgd import APGD, APGDConfig
from advbench.attacks.auto import Auto
from advbench.attacks.checks import CHECKS, SCALE_INVARIANT_LOSS
from advbench.attacks.ensemble import robust_ensemble
from advbench.attacks.gradient import FGSM, PGD
from advbench.attacks.wrappers import CONFIRM_DRAWS, AttackedModel
from advbench.core.threat import parse_threat
from advbench.models.vote import DEFAULT_VOTE, VoteRule, one_pass, vote
from advbench.models.wrapper import RobustModel
from advbench.report.intervals import mean_interval

ALPHA = DEFAULT_VOTE.alpha


def allowance(decisions: int, alpha: float = ALPHA) -> int:
    """The most wrong decisions a rule of error rate alpha makes in `decisions`, but for 1e-4."""
    return int(binom.isf(1e-4, max(1, decisions), alpha))


def test_the_rule_decides_at_each_look_by_the_exact_binomial_test() -> None:
    rule = VoteRule()
    level = rule.alpha / len(rule.looks)
    for n, k in zip(rule.looks, rule.needed):
        assert binom.sf(k - 1, n, 0.5) <= level < binom.sf(k - 2, n, 0.5)
    assert "exact binomial test" in rule.describe() and rule.label() in rule.to_config()["label"]


def test_vote_decisions_are_right_at_the_stated_rate() -> None:
    model = flip_model()
    p = torch.tensor([0.3, 0.45, 0.55, 0.7]).repeat(400)
    x, y = inputs_with_p(model, p)
    verdict = vote(model, x, y)
    assert verdict.draws is not None and verdict.correct_draws is not None
    correct = verdict.correct_draws >= torch.tensor(DEFAULT_VOTE.needed)[
        torch.searchsorted(torch.tensor(DEFAULT_VOTE.looks), verdict.draws)
    ]
    wrong_side = ((p < 0.5) & correct) | ((p > 0.5) & verdict.wrong)
    assert int(wrong_side.sum()) <= allowance(len(p))
    # The estimates are the draws' share, unbiased for P(correct).
    assert abs(float((verdict.p_correct - p).mean())) < 0.02
    # Clear points are decided at the first look; undecided ones reached the cap.
    clear_x, clear_y = inputs_with_p(model, torch.tensor([0.02, 0.98]).repeat(100))
    clear = vote(model, clear_x, clear_y)
    assert clear.draws is not None and bool((clear.draws == DEFAULT_VOTE.looks[0]).float().mean() > 0.9)
    undecided = ~verdict.wrong & ~correct
    assert bool((verdict.draws[undecided] == DEFAULT_VOTE.cap).all())
    # An undecided point keeps its label as prediction (it counts as robust); a wrong one does not.
    assert bool((verdict.prediction[undecided] == y[undecided]).all())
    assert bool((verdict.prediction[verdict.wrong] != y[verdict.wrong]).all())


def test_expected_accuracy_intervals_cover_at_their_nominal_rate() -> None:
    model = flip_model()
    g = torch.Generator().manual_seed(1)
    p = 0.2 + 0.8 * torch.rand(40, generator=g)
    x, y = inputs_with_p(model, p, seed=2)
    truth = float(true_p_correct(model, x, y).mean())
    reps, covered = 120, 0
    for rep in range(reps):
        model.reseed(rep)
        estimates = vote(model, x, y).p_correct
        low, high = mean_interval(float(estimates.mean()), float(estimates.std()), len(estimates))
        covered += low <= truth <= high
    # 95 % nominal; 120 repetitions put the observed rate within about 0.06 of it.
    assert covered / reps >= 0.95 - 0.06


def _false_breaks(model, outcome, x, y) -> tuple[int, int, int]:
    """(breaks, breaks at points whose true P(correct) is above 1/2, those one pass would call broken)."""
    breaks = false = one_pass_false = 0
    for attempt in outcome.attempts:
        if attempt.result is None:
            continue
        rows = attempt.target
        adv = attempt.result.x_adv
        truth = true_p_correct(model, adv, y[rows])
        broken = attempt.result.success
        breaks += int(broken.sum())
        false += int((broken & (truth > 0.5)).sum())
        single = one_pass(model, adv, y[rows]).wrong
        one_pass_false += int((single & (truth > 0.5)).sum())
    return breaks, false, one_pass_false


def test_weak_attacks_after_auto_lower_robust_accuracy_only_within_the_vote_error() -> None:
    torch.set_num_threads(1)
    model = flip_model()
    p = torch.linspace(0.55, 0.95, 48)
    x, y = inputs_with_p(model, p, seed=3)
    threat = parse_threat("linf:0.05")
    view = AttackedModel(model, 5)
    idx = torch.arange(len(x))
    correct = ~view.judge(x, y).wrong
    (alone,) = robust_ensemble([("auto", Auto(), view)], x, y, [threat], idx, 0, correct)
    (more,) = robust_ensemble(
        [("auto", Auto(), view), ("fgsm", FGSM(), view), ("pgd", PGD(), view)],
        x,
        y,
        [threat],
        idx,
        0,
        correct,
    )
    assert alone.robust is not None and more.robust is not None
    breaks, false, _ = _false_breaks(model, more, x, y)
    # Every point a vote calls broken is broken (P(correct) < 1/2), but for the rule's error rate.
    assert false <= allowance(breaks)
    # The weak attacks add breaks only where the model is really broken.
    new = int((alone.robust & ~more.robust).sum())
    assert new <= allowance(int(alone.robust.sum()))
    # One pass per point would have judged many robust points broken: the test can fail.
    survivors = alone.robust.nonzero().view(-1)
    fooled = sum(
        int((one_pass(model, x[survivors], y[survivors]).wrong).sum()) for _ in range(5)
    )
    assert fooled > allowance(len(survivors))


def test_early_stopping_leaves_only_samples_a_vote_confirmed_wrong() -> None:
    torch.set_num_threads(1)
    model = flip_model()
    x, y = inputs_with_p(model, torch.linspace(0.55, 0.95, 32), seed=4)
    stops: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    class Recording(AttackedModel):
        def confirmed_wrong(self, x, y, wrong_draws):  # type: ignore[no-untyped-def]
            stop, spent = super().confirmed_wrong(x, y, wrong_draws)
            stops.append((x[stop], y[stop], spent[stop]))
            return stop, spent

    view = Recording(model, 5)
    result = APGD(APGDConfig(steps=30))(view, x, y, parse_threat("linf:0.05"))
    points = torch.cat([s[0] for s in stops])
    labels = torch.cat([s[1] for s in stops])
    spent = torch.cat([s[2] for s in stops])
    assert len(points) > 0, "the attack must stop some samples early for this test to mean anything"
    # A sample leaves only after a vote of its own draws (>= the first look) decided it wrong ...
    assert bool((spent >= DEFAULT_VOTE.looks[0]).all())
    # ... so the points it left at are broken, but for the rule's error rate.
    assert int((true_p_correct(model, points, labels) > 0.5).sum()) <= allowance(len(points))
    # Samples that ran all their steps spent every EOT draw; the ones that stopped fewer.
    full = 30 * 5
    assert bool((result.steps[result.success] < full + 4 * DEFAULT_VOTE.cap).all())


def test_a_confirming_vote_stops_at_its_cap_and_is_keyed() -> None:
    model = flip_model()
    x, y = inputs_with_p(model, torch.full((64,), 0.5), seed=6)  # undecidable: every vote runs on
    nominated = torch.full((64,), 5)
    capped, full = AttackedModel(model, 5), AttackedModel(model, 5, confirm_draws=None)
    stop, spent = capped.confirmed_wrong(x, y, nominated)
    assert bool((spent == CONFIRM_DRAWS).all()) and int(stop.sum()) <= allowance(64)
    # Without the cap the same points take the vote's full course: the cap is what saves draws.
    _, spent_full = full.confirmed_wrong(x, y, nominated)
    assert int((spent_full == DEFAULT_VOTE.cap).sum()) > 32
    # Clearly broken points are still confirmed within the cap.
    broken_x, broken_y = inputs_with_p(model, torch.full((32,), 0.02), seed=7)
    stop, _ = capped.confirmed_wrong(broken_x, broken_y, torch.full((32,), 5))
    assert int(stop.sum()) >= 32 - allowance(32, 0.1)
    # Not nominated, not voted.
    stop, spent = capped.confirmed_wrong(x, y, torch.full((64,), 2))
    assert not stop.any() and not spent.any()
    # The cap is part of a random run's identity; legacy runs (no cap) and one-pass models keep theirs.
    assert capped.adaptations()["confirm_draws"] == CONFIRM_DRAWS
    assert "confirm_draws" not in full.adaptations()
    plain = RobustModel(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), (1, 8, 8), 10)
    assert "confirm_draws" not in AttackedModel(plain).adaptations()


def test_checks_on_random_models_fire_only_on_a_significant_share() -> None:
    check = CHECKS.get(SCALE_INVARIANT_LOSS)
    # Two breaks in fifteen survivors above a 3 % limit: a deterministic model's breaks are proof,
    assert not check.tested(2, 15, "why").passed
    # a random model's are votes: the exact test (p = 0.07) does not reject "share <= 3 %".
    voted = check.tested(2, 15, "why", voted=True)
    assert voted.passed and "exact binomial test" in voted.why
    assert not check.tested(6, 15, "why", voted=True).passed
    assert check.tested(1, 15, "why", voted=True).passed


def test_eval_of_a_random_model_reports_votes_and_expected_accuracy(tmp_path) -> None:
    torch.set_num_threads(1)
    model = flip_model()
    x, y = inputs_with_p(model, torch.linspace(0.3, 1.0, 24), seed=5)
    ev = advbench.evaluate(
        model.net, x, y, "linf:0.05", "pgd:steps=10", checks=False, num_classes=10, eot=5,
        db=tmp_path / "runs.sqlite",
    )
    summary = ev.summary
    assert summary.clean_expected is not None and summary.clean_expected_sd is not None
    assert abs(summary.clean_expected - float(true_p_correct(model, x, y).mean())) < 0.1
    (at_eps,) = summary.per_eps
    assert at_eps.expected_robust is not None and at_eps.expected_robust <= summary.clean_expected
    attacked = [r for r in ev.rows if r["status"] == "attacked"]
    assert attacked and all(r["draws"] >= DEFAULT_VOTE.looks[0] for r in attacked)
    assert all(0 <= r["correct_draws"] <= r["draws"] for r in attacked)
    assert ev.adaptations["pgd:steps=10"]["vote"] == DEFAULT_VOTE.label()
    assert ev.adaptations["pgd:steps=10"]["confirm_draws"] == CONFIRM_DRAWS


def test_deterministic_runs_store_no_votes(tmp_path, digits_model, digits_data) -> None:
    x, y = digits_data
    ev = advbench.evaluate(
        digits_model, x[:8], y[:8], "linf:0.05", "fgsm", checks=False, db=tmp_path / "d.sqlite"
    )
    assert all(r["draws"] is None and r["correct_draws"] is None for r in ev.rows)
    assert ev.summary.clean_expected is None and ev.summary.per_eps[0].expected_robust is None
    assert "vote" not in ev.adaptations["fgsm"] and "confirm_draws" not in ev.adaptations["fgsm"]


def test_the_square_probe_on_a_random_model_is_shorter_and_keyed(tmp_path, digits_model, digits_data) -> None:
    """The checks' black-box probe runs `RANDOM_SQUARE_PROBE_QUERIES` queries on a model declared
    random, and the run's key says so; a deterministic model's probe and key are as before."""
    from advbench.attacks.stage_checks import RANDOM_SQUARE_PROBE_QUERIES, SQUARE_PROBE_QUERIES
    from advbench.engine.plan import EvalPlan

    torch.set_num_threads(1)
    model = flip_model()
    x, y = inputs_with_p(model, torch.linspace(0.9, 1.0, 12), seed=2)
    ev = advbench.evaluate(
        model.net, x, y, "linf:0.05", "pgd:steps=5", num_classes=10, eot=5, db=tmp_path / "r.sqlite"
    )
    probes = {r["attack"] for r in ev.rows if r["attack"].startswith("check:square")}
    assert probes == {f"check:square-{RANDOM_SQUARE_PROBE_QUERIES}"}
    plan = EvalPlan.from_objects(model.net, x, y, attacks=("pgd:steps=5",), device="cpu", num_classes=10, checks=True)
    assert plan.square_probe_queries == RANDOM_SQUARE_PROBE_QUERIES < SQUARE_PROBE_QUERIES
    assert plan.run_key().random_square_probe == RANDOM_SQUARE_PROBE_QUERIES
    unchecked = EvalPlan.from_objects(model.net, x, y, attacks=("pgd:steps=5",), device="cpu", num_classes=10, checks=False)
    assert unchecked.run_key().random_square_probe is None

    dx, dy = digits_data
    ev = advbench.evaluate(digits_model, dx[:16], dy[:16], "linf:0.05", "pgd:steps=5", db=tmp_path / "d.sqlite")
    assert {r["attack"] for r in ev.rows if r["attack"].startswith("check:square")} == {"check:square-500"}
    plan = EvalPlan.from_objects(digits_model, dx[:16], dy[:16], attacks=("pgd:steps=5",), device="cpu", checks=True)
    assert plan.square_probe_queries == SQUARE_PROBE_QUERIES
    assert "random_square_probe" not in plan.payload()
