"""Host syncs in the attack loops (issue 39, item 5), counted on the CPU by benchmarks/host_syncs.py's
hook: PGD and APGD read the device once per step (the count of samples leaving), where they read
it two to four times before; the hook counts what it claims and restores torch afterwards."""

from __future__ import annotations

import importlib.util
import random
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from flip_model import SHAPE, base_prediction, flip_model
from torch import nn

from advbench.attacks import build_attack
from advbench.core import device as device_policy
from advbench.core.tensors import partition
from advbench.core.threat import Norm, ThreatModel
from advbench.models.randomness import InputHistory
from advbench.models.wrapper import RobustModel

REPO = Path(__file__).resolve().parents[1]


def benchmark():
    spec = importlib.util.spec_from_file_location("host_syncs", REPO / "benchmarks" / "host_syncs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_counter_counts_blocking_calls_and_restores_torch() -> None:
    hs = benchmark()
    t, mask = torch.arange(4.0), torch.tensor([True, False, True, False])
    getitem = torch.Tensor.__getitem__
    with hs.SyncCounter().active() as counter:
        bool(t.sum())
        t[mask]
        t[1:3]  # a slice is no sync
        t[torch.tensor([0, 2])]  # nor an integer index
        t.nonzero()
        t.max().item()
        torch.where(mask)
    assert dict(counter.counts) == {"__bool__": 1, "mask[]": 1, "nonzero": 1, "item": 1, "where(cond)": 1}
    assert torch.Tensor.__getitem__ is getitem


def test_pgd_and_apgd_sync_once_per_step() -> None:
    hs = benchmark()
    torch.manual_seed(0)
    model = RobustModel(nn.Sequential(nn.Flatten(), nn.Linear(16, 10)), (1, 4, 4), 10)
    x = torch.rand(32, 1, 4, 4)
    y = model(x).argmax(1)  # all correct at the start
    threat = ThreatModel(Norm.LINF, 0.03)  # some samples break along the way, some never
    for spec in ("pgd:steps=20", "apgd:steps=20"):
        attack = build_attack(spec)[1]
        counter = hs.SyncCounter()
        with hs.counting_steps() as steps, counter.active():
            result = attack(model, x, y, threat, seed=0)
        assert 0 < int(result.success.sum()) < len(x), spec
        # One per step, plus a few per call (the clean pass, the final judgement, the stage split).
        assert counter.total <= steps[0] + 6, (spec, steps[0], dict(counter.counts))


def test_partition_splits_in_order_for_one_sync() -> None:
    hs = benchmark()
    mask = torch.tensor([True, False, True, False, False])
    with hs.SyncCounter().active() as counter:
        rows, keep = partition(mask)
    assert rows.tolist() == [0, 2] and keep.tolist() == [1, 3, 4] and counter.total == 1
    assert [t.tolist() for t in partition(torch.zeros(0, dtype=torch.bool))] == [[], []]


# --- the CUDA schedule: finished rows leave every few steps, results unchanged --------------------

SCHEDULED = (
    "pgd:steps=20",
    "pgd:steps=10,restarts=2",
    "apgd:steps=20",
    "apgd:steps=12,loss=dlr-targeted",
    "square:n_queries=200",
)


def cuda_schedule(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """What `steps_between_syncs` answers on a CUDA device, on this CPU."""
    monkeypatch.setattr(
        device_policy, "steps_between_syncs", lambda device: device_policy.ASYNC_STEPS_BETWEEN_SYNCS
    )


def small_problem() -> tuple[RobustModel, torch.Tensor, torch.Tensor, ThreatModel]:
    torch.manual_seed(0)
    model = RobustModel(nn.Sequential(nn.Flatten(), nn.Linear(16, 10)), (1, 4, 4), 10)
    x = torch.rand(48, 1, 4, 4)
    return model, x, model(x).argmax(1), ThreatModel(Norm.LINF, 0.03)


@pytest.mark.parametrize("spec", SCHEDULED)
def test_the_cuda_schedule_gives_the_cpu_schedules_results(spec, monkeypatch) -> None:
    hs = benchmark()
    model, x, y, threat = small_problem()
    attack = build_attack(spec)[1]
    every_step = attack(model, x, y, threat, seed=0)
    assert 0 < int(every_step.success.sum()) < len(x), "some samples must leave along the way"
    cuda_schedule(monkeypatch)
    counter = hs.SyncCounter()
    with hs.counting_steps() as steps, counter.active():
        scheduled = attack(model, x, y, threat, seed=0)
    assert torch.equal(scheduled.x_adv, every_step.x_adv), spec
    assert torch.equal(scheduled.success, every_step.success), spec
    assert torch.equal(scheduled.steps, every_step.steps), spec  # rows riding along are not counted
    # One sync per ASYNC_STEPS_BETWEEN_SYNCS steps (and per run or restart), plus a few per call.
    runs = 9 if "targeted" in spec else 2 if "restarts=2" in spec else 1  # 9 target classes
    allowed = steps[0] / device_policy.ASYNC_STEPS_BETWEEN_SYNCS + 3 * runs + 6
    assert counter.total <= allowed, (spec, steps[0], dict(counter.counts))


@pytest.mark.parametrize("spec", ["pgd:steps=12", "apgd:steps=12"])
def test_the_cuda_schedule_keeps_a_random_models_votes(spec, monkeypatch) -> None:
    torch.set_num_threads(1)
    model = flip_model()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(24, *SHAPE, generator=g)
    x[:, 0, 0, 0] = torch.linspace(0.05, 0.6, 24)  # P(flip): some break early, some never
    y = base_prediction(model, x)
    attack = build_attack(spec)[1]
    threat = ThreatModel(Norm.LINF, 0.05)

    def run():  # type: ignore[no-untyped-def]
        model.reseed(0)
        return attack(attack.view(model, eot_draws=5), x, y, threat, seed=0)

    every_step = run()
    assert 0 < int(every_step.success.sum()) < len(x)
    cuda_schedule(monkeypatch)
    scheduled = run()
    assert torch.equal(scheduled.x_adv, every_step.x_adv), spec
    assert torch.equal(scheduled.success, every_step.success), spec
    assert torch.equal(scheduled.steps, every_step.steps), spec  # no vote spent on finished rows


def test_the_input_history_counts_each_inputs_earlier_forwards_without_a_sync() -> None:
    hs = benchmark()
    rng = random.Random(0)
    for _ in range(200):
        history, seen = InputHistory(), Counter()
        pool = [rng.randrange(-(2**62), 2**62) for _ in range(rng.randrange(1, 10))]
        for _ in range(rng.randrange(1, 6)):
            keys = [rng.choice(pool) for _ in range(rng.randrange(0, 12))]
            with hs.SyncCounter().active() as counter:
                got = history.occurrences(torch.tensor(keys, dtype=torch.int64))
            assert counter.total == 0
            expected = []
            for k in keys:  # earlier batches and earlier rows of this one
                expected.append(seen[k])
                seen[k] += 1
            assert got.tolist() == expected
