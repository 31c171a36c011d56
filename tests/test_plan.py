"""Plans: built from names or from objects, they give the same rows; runs stored before the
reshaped core keep their identity (so they resume and are found again)."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from conftest import REPO
from test_cli import advbench

from advbench.data import load_dataset
from advbench.data.registry import dataset_labels
from advbench.data.subset import select_indices
from advbench.engine import EvalPlan, EvalSpec, Runtime, evaluate_plan, resolve
from advbench.models.card import load_model
from advbench.store import Store

ATTACKS = ("fgsm", "pgd:steps=5", "deepfool")
SPEC_FIELDS = {f.name for f in fields(EvalSpec)}


def rows(db: Path) -> tuple[list, list]:
    with Store(db) as store:
        (run,) = store.list_runs()
        samples = [{k: v for k, v in r.items() if k != "seconds"} for r in store.sample_rows(run.run_id)]
        return store.clean_rows(run.run_id), samples


def test_plan_from_objects_gives_the_rows_of_the_cli(digits_zoo: Path, tmp_path: Path) -> None:
    proc = advbench("eval", "--model", "rn18-nt", "--dataset", "digits", "--zoo", str(digits_zoo), "--n", "40", "--eps", "0.05", "--eps", "0.1",
                    *[a for attack in ATTACKS for a in ("--attack", attack)], "--no-checks", "--db", str(tmp_path / "cli.sqlite"),
                    "--device", "cpu")  # rows compared exactly: both on the CPU
    assert proc.returncode == 0, proc.stderr
    # A library user's objects: the bare network (not our wrapper), its normalization, tensors.
    wrapped, _ = load_model("rn18-nt", "digits", digits_zoo)
    net = wrapped.net
    indices = select_indices(dataset_labels("digits"), 40, 0)
    data = load_dataset("digits", "test", indices=indices)
    plan = EvalPlan.from_objects(net, data.images, data.labels, attacks=ATTACKS, eps=(0.05, 0.1), indices=indices,
                                 mean=wrapped.mean.flatten().tolist(), std=wrapped.std.flatten().tolist(), device="cpu")
    outcome = evaluate_plan(plan, Runtime(db=tmp_path / "objects.sqlite"))
    assert rows(tmp_path / "objects.sqlite") == rows(tmp_path / "cli.sqlite")
    assert 0 < outcome.summary.clean_accuracy <= 1 and outcome.summary.per_eps[1].worst_case <= outcome.summary.per_eps[0].worst_case
    # The same objects again: found by their key, not re-run.
    again = evaluate_plan(EvalPlan.from_objects(net, data.images, data.labels, attacks=ATTACKS, eps=(0.05, 0.1), indices=indices,
                                           mean=wrapped.mean.flatten().tolist(), std=wrapped.std.flatten().tolist(), device="cpu"),
                     Runtime(db=tmp_path / "objects.sqlite"))
    assert again.already_finished and again.summary.run_id == outcome.summary.run_id


def test_plan_from_objects_refuses_bad_tensors(digits_model) -> None:
    from advbench.core.errors import UsageError

    with pytest.raises(UsageError, match="N x C x H x W"):
        EvalPlan.from_objects(digits_model, torch.rand(4, 64), torch.zeros(4, dtype=torch.int64))


def _shipped_runs(name: str, tmp_path: Path) -> list[tuple[str, dict]]:
    db = tmp_path / f"{name}.sqlite"
    with gzip.open(REPO / "docs" / "runs" / f"{name}.sqlite.gz") as src, open(db, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with sqlite3.connect(db) as conn:
        return [(key, json.loads(config)) for key, config in conn.execute("SELECT config_key, config FROM runs WHERE kind = 'eval' ORDER BY created")]


def test_runs_stored_before_the_reshaped_core_keep_their_identity(tmp_path: Path) -> None:
    """The run key (what resume and `find_run` use) is computed exactly as before, for every kind
    of attack the shipped runs used, whenever the checkpoint is still the one they measured.
    Runs made with the checks off are the exception by design: the checks now change the
    evaluation, so such a run is no longer the answer to the same question (it is still shown)."""
    checked = set()
    for key, config in _shipped_runs("reproductions", tmp_path):
        stored = config["eval_config"]
        if not stored:  # not evaluated by name (Foolbox 2's runs): no spec to rebuild the key from
            continue
        if stored["model"].startswith("file:") or stored["model"] in checked or not stored.get("checks", True) or stored.get("check_n", 100) != 100:
            continue
        spec = EvalSpec(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in stored.items() if k in SPEC_FIELDS})
        try:
            plan = resolve(spec, Runtime(device="cpu"))
        except Exception:  # noqa: BLE001 - a checkpoint retrained since: its hash differs anyway
            continue
        if plan.sha256 != config["checkpoint_sha256"]:
            continue
        assert plan.key == key, stored
        checked.add(stored["model"])
    assert len(checked) >= 3, checked


class Interrupt(Exception):
    pass


def test_a_model_random_at_inference_stores_the_same_rows_across_batch_sizes_and_a_resume(digits_model, digits_data, tmp_path: Path) -> None:
    from advbench.models.noise import GaussianNoise
    from advbench.models.wrapper import RobustModel

    noisy = RobustModel(torch.nn.Sequential(GaussianNoise(0.0, inference_sigma=0.5), digits_model.net), digits_model.input_shape, 10,
                        digits_model.mean.flatten().tolist(), digits_model.std.flatten().tolist(), name="noisy-digits")
    assert noisy.stochastic
    x, y = digits_data[0][:24], digits_data[1][:24]

    def plan() -> EvalPlan:
        return EvalPlan.from_objects(noisy, x, y, attacks=("fgsm", "pgd:steps=3"), eps=(0.1,), eot=2, checks=True, check_n=8, device="cpu")

    whole = evaluate_plan(plan(), Runtime(db=tmp_path / "whole.sqlite", batch_size=24))
    assert whole.summary.clean_accuracy < 1  # the noise is strong enough to matter

    def stop_after_first_batch(done: int, total: int) -> None:
        if done >= 7:
            raise Interrupt

    with pytest.raises(Interrupt):
        evaluate_plan(plan(), Runtime(db=tmp_path / "resumed.sqlite", batch_size=7), progress=stop_after_first_batch)
    resumed = evaluate_plan(plan(), Runtime(db=tmp_path / "resumed.sqlite", batch_size=5))
    assert resumed.resumed and not resumed.already_finished
    assert rows(tmp_path / "resumed.sqlite") == rows(tmp_path / "whole.sqlite")


def test_the_plan_is_a_value_and_an_escalation_makes_a_new_one(digits_model, digits_data) -> None:
    from dataclasses import FrozenInstanceError

    from advbench.attacks.checks import LONGER, Escalation

    x, y = digits_data[0][:8], digits_data[1][:8]
    plan = EvalPlan.from_objects(digits_model, x, y, attacks=("pgd:steps=5",), eps=(0.1,), device="cpu")
    with pytest.raises(FrozenInstanceError):
        plan.attacks = ()  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        plan.attacks[0].view = None  # type: ignore[misc]
    found = Escalation(failed=("more-steps",), attacks=(LONGER,), changes=("longer PGD",))
    escalated = plan.escalated(found)
    assert [a.label for a in plan.attacks] == ["pgd:steps=5"]  # the first plan is unchanged
    assert len(escalated.attacks) == 2 and escalated.escalation == found
    assert escalated.key == plan.key  # the identity is what was asked
    assert escalated.escalated(found) is escalated  # the same findings again change nothing
    random = escalated.escalated(Escalation(failed=("deterministic",), random=True))
    assert [a.view.eot_draws for a in random.attacks] == [20, 20] and [a.view.eot_draws for a in escalated.attacks] == [1, 1]
