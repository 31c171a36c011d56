"""The typed run key (advbench/engine/run_key.py): every shipped run's stored key is rebuilt from
its stored config, the engine's payloads are reproduced by the typed keys, a new defaulted field
changes no key, the keys are frozen, and every identity field is in the hash."""

from __future__ import annotations

import dataclasses
import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from advbench.core.errors import StoreError, UsageError
from advbench.data.subset import indices_hash
from advbench.engine import run_key
from advbench.engine.certify import LOOKS, CertifyPlan
from advbench.engine.plan import EvalPlan
from advbench.engine.run_key import (
    SCHEMA_VERSION,
    Adaptation,
    AttackKey,
    CertifyRunKey,
    EvalRunKey,
    JsonMap,
    SequentialLooks,
    unless_default,
)
from advbench.engine.runs import config_key

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "docs" / "runs").glob("*.sqlite.gz"))
KEYS = {"eval": EvalRunKey, "certify": CertifyRunKey}


def shipped_runs(tmp_path: Path) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(database, run id, kind, stored key, stored config) of every run in every shipped database."""
    runs = []
    for gz in SHIPPED:
        db = tmp_path / gz.name.removesuffix(".gz")
        db.write_bytes(gzip.decompress(gz.read_bytes()))
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT run_id, kind, config_key, config FROM runs ORDER BY created").fetchall()
        runs += [(gz.name, run_id, kind, key, json.loads(config)) for run_id, kind, key, config in rows]
    return runs


# What the engine should call instead of building its payload dicts (EvalPlan.payload, CertifyPlan.payload).
def eval_key_of(plan: EvalPlan) -> EvalRunKey:
    return EvalRunKey(
        model=plan.name, checkpoint_sha256=plan.sha256, dataset=plan.dataset, split=plan.split, indices_hash=plan.indices_hash,
        norm=plan.threats[0].norm.value, eps=tuple(t.eps for t in plan.threats),
        attacks=tuple(AttackKey(a.label, JsonMap.of(a.config)) for a in plan.attacks),
        adaptations=tuple((label, Adaptation.of(chosen)) for label, chosen in plan.adaptations.items()),
        seed=plan.seed, checks=plan.checks, check_n=plan.check_n, device=plan.work_device, tf32=plan.tf32,
    )


def certify_key_of(plan: CertifyPlan) -> CertifyRunKey:
    s = plan.spec
    return CertifyRunKey(
        model=s.model, checkpoint_sha256=plan.sha256, dataset=s.dataset, split=s.split, indices_hash=indices_hash(plan.indices),
        sigmas=tuple(c.sigma for c in plan.settings), n0=s.n0, n=s.noise_draws, alpha=s.alpha, seed=s.seed,
        adaptive_radius=s.adaptive_radius,
        sequential=SequentialLooks(s.radii, s.resolution, LOOKS.first_look, LOOKS.growth) if s.sequential else None,
        precision=s.precision, device=plan.work_device, tf32=plan.tf32,
    )


def test_every_shipped_run_rebuilds_its_stored_key(tmp_path: Path) -> None:
    """All runs of docs/runs/*.sqlite.gz: evaluations and certifications, including escalated runs
    (their stored attacks include the escalation's), runs stored before adaptations existed and
    Foolbox 2's (scripts/foolbox2_table1.py), whose keys hash no adaptations."""
    counts = {"eval": 0, "certify": 0}
    escalated = without_adaptations = 0
    for db, run_id, kind, key, config in shipped_runs(tmp_path):
        rebuilt = KEYS[kind].from_stored(config)
        assert rebuilt.key() == key, (db, run_id, rebuilt.payload())
        assert type(rebuilt).from_stored(rebuilt.payload()) == rebuilt  # the payload is a stored config too
        counts[kind] += 1
        escalated += bool((config.get("escalation") or {}).get("attacks"))
        without_adaptations += kind == "eval" and not config.get("adaptations")
    print(f"rebuilt {counts['eval']} eval and {counts['certify']} certify runs ({escalated} escalated, {without_adaptations} without adaptations)")
    assert counts["eval"] >= 500 and counts["certify"] >= 4 and escalated >= 10 and without_adaptations >= 64


def tiny() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), torch.rand(6, 1, 2, 6), torch.tensor([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("options", [
    {}, {"checks": True}, {"checks": True, "check_n": 4}, {"checks": False, "check_n": 4}, {"attacks": ("fgsm", "pgd:steps=3,restarts=2")},
    {"eps": (0.05, 0.1), "norm": "l2", "attacks": ("pgd",)}, {"eot": 3, "bpda": False, "seed": 7},
])
def test_the_typed_key_reproduces_the_eval_payload(options: dict[str, Any]) -> None:
    net, x, y = tiny()
    plan = EvalPlan.from_objects(net, x, y, device="cpu", **{"attacks": ("fgsm",), **options})
    key = eval_key_of(plan)
    assert key.payload() == plan.payload() and key.key() == plan.key
    assert EvalRunKey.of(plan.payload()) == key


def test_the_typed_key_reproduces_the_eval_payload_of_a_random_model() -> None:
    """EOT chosen by the adaptive default, an `Attack` object among the specs."""
    from advbench.attacks.registry import build_attack
    from advbench.models.noise import GaussianNoise
    from advbench.models.wrapper import RobustModel

    net, x, y = tiny()
    noisy = RobustModel(nn.Sequential(GaussianNoise(0.0, inference_sigma=0.5), net), (1, 2, 6), 3, [0.0], [1.0], name="noisy")
    plan = EvalPlan.from_objects(noisy, x, y, attacks=("pgd:steps=2", build_attack("fgsm")[1]), device="cpu")
    assert plan.adaptations["pgd:steps=2"]["eot_draws"] == 20 and plan.adaptations["pgd:steps=2"]["stochastic_model"]
    assert eval_key_of(plan).payload() == plan.payload()


@pytest.mark.parametrize("options", [
    {}, {"sigmas": (0.12, 0.25), "n0": 10, "noise_draws": 50, "alpha": 0.01, "seed": 3}, {"adaptive_radius": 0.5},
    {"sequential": True}, {"sequential": True, "radii": (0.25, 0.5), "resolution": 0.05}, {"precision": "bf16"},
])
def test_the_typed_key_reproduces_the_certify_payload(options: dict[str, Any]) -> None:
    net, x, y = tiny()
    plan = CertifyPlan.from_objects(net, x, y, device="cpu", **options)
    key = certify_key_of(plan)
    assert key.payload() == plan.payload() and key.key() == config_key(plan.payload())
    assert CertifyRunKey.of(plan.payload()) == key


def test_a_new_defaulted_field_changes_no_key(tmp_path: Path) -> None:
    runs = shipped_runs(tmp_path)
    for kind, base in KEYS.items():
        later = dataclasses.make_dataclass(f"Later{base.__name__}", [("new_option", int, unless_default(0))], bases=(base,), frozen=True)
        mine = [(key, config) for _, _, k, key, config in runs if k == kind]
        for key, config in mine:
            rebuilt = later.from_stored(config)
            assert rebuilt.new_option == 0 and rebuilt.key() == key and "new_option" not in rebuilt.payload()
        used = dataclasses.replace(later.from_stored(mine[0][1]), new_option=3)
        assert used.payload()["new_option"] == 3 and used.key() != mine[0][0]


def test_a_field_without_a_write_rule_is_refused() -> None:
    undeclared = dataclasses.make_dataclass("Undeclared", [("new_option", int, dataclasses.field(default=0))], bases=(EvalRunKey,), frozen=True)
    with pytest.raises(TypeError, match="new_option declares no write rule"):
        undeclared.of(eval_key_of(EvalPlan.from_objects(*tiny(), attacks=("fgsm",), device="cpu")).payload())


def some_eval_key() -> EvalRunKey:
    return EvalRunKey(
        model="m", checkpoint_sha256="a" * 64, dataset="digits", split="test", indices_hash="0123", norm="linf", eps=(0.1,),
        attacks=(AttackKey("pgd:steps=5", JsonMap.of({"steps": 5, "inner": {"loss": "ce"}, "sizes": [1, 2]})),),
        adaptations=(("pgd:steps=5", Adaptation(1, True, False)),), seed=0,
    )


def some_certify_key() -> CertifyRunKey:
    return CertifyRunKey(model="m", checkpoint_sha256="a" * 64, dataset="digits", split="test", indices_hash="0123", sigmas=(0.25,),
                         n0=100, n=1000, alpha=0.001, seed=0, adaptive_radius=None)


def test_the_keys_are_frozen_and_hashable() -> None:
    eval_key, certify_key = some_eval_key(), some_certify_key()
    parts = [eval_key, certify_key, eval_key.attacks[0], eval_key.adaptations[0][1], eval_key.attacks[0].config, SequentialLooks((), 0.01, 100, 2.0)]
    for part in parts:
        name = dataclasses.fields(part)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(part, name, getattr(part, name))
    assert len({eval_key, some_eval_key(), certify_key}) == 2
    with pytest.raises(TypeError, match="eps must be a tuple"):
        dataclasses.replace(eval_key, eps=[0.1])  # lists would make the key mutable


# Another value of every field; a field added later needs one here.
EVAL_CHANGES = {
    "model": "m2", "checkpoint_sha256": "b" * 64, "dataset": "fashion-mnist", "split": "train", "indices_hash": "4567", "norm": "l2",
    "eps": (0.1, 0.2), "attacks": (AttackKey("pgd:steps=5", JsonMap.of({"steps": 6})),), "seed": 1,
    "adaptations": (("pgd:steps=5", Adaptation(20, True, True)),), "checks": False, "check_n": 50, "random_square_probe": 100, "device": "cuda",
    "tf32": {"device": "cuda", "tf32": True},  # TF32 exists only on CUDA: against the same key on CUDA
}
CERTIFY_CHANGES = {
    "model": "m2", "checkpoint_sha256": "b" * 64, "dataset": "fashion-mnist", "split": "train", "indices_hash": "4567", "sigmas": (0.5,),
    "n0": 10, "n": 100, "alpha": 0.01, "seed": 1, "adaptive_radius": 0.5, "sequential": SequentialLooks((0.5,), 0.01, 100, 2.0),
    "precision": "bf16", "noise": "torch-generator", "device": "cuda", "tf32": {"device": "cuda", "tf32": True},
}


@pytest.mark.parametrize("key, changes", [(some_eval_key(), EVAL_CHANGES), (some_certify_key(), CERTIFY_CHANGES)])
def test_every_identity_field_changes_the_key(key: EvalRunKey | CertifyRunKey, changes: dict[str, Any]) -> None:
    fixed = {"schema_version", "kind"}  # the version is tested below; a certify key's kind is always 'certify'
    assert set(changes) == {f.name for f in dataclasses.fields(key)} - fixed
    for name, value in changes.items():
        if isinstance(value, dict):  # a field that varies only together with others: against them alone
            base = dataclasses.replace(key, **{k: v for k, v in value.items() if k != name})
            assert dataclasses.replace(base, **value).key() != base.key(), name
        else:
            assert dataclasses.replace(key, **{name: value}).key() != key.key(), name


def test_the_nested_parts_are_in_the_key() -> None:
    key = some_eval_key()
    attack = key.attacks[0]
    for nested in ({"steps": 5, "inner": {"loss": "dlr"}, "sizes": [1, 2]}, {"steps": 5, "inner": {"loss": "ce"}, "sizes": [2, 1]}):
        assert dataclasses.replace(key, attacks=(dataclasses.replace(attack, config=JsonMap.of(nested)),)).key() != key.key()
    for change in ({"treated_as_random": True}, {"log_outputs": True}, {"surrogate": "rn18-nt"}, {"autoattack_version": "rand"}, {"bpda": False}):
        adapted = dataclasses.replace(key.adaptations[0][1], **change)
        assert dataclasses.replace(key, adaptations=(("pgd:steps=5", adapted),)).key() != key.key(), change
    assert "treated_as_random" not in key.adaptations[0][1].payload()  # defaulted: written only when set


def test_check_n_counts_only_with_checks() -> None:
    off = dataclasses.replace(some_eval_key(), checks=False, check_n=50)
    assert off.check_n == 100 and off.payload()["checks"] == "off" and "check_n" not in off.payload()
    assert dataclasses.replace(some_eval_key(), check_n=50).payload()["check_n"] == 50


def test_the_schema_version_enters_the_hash_only_after_1(monkeypatch: pytest.MonkeyPatch) -> None:
    key = some_eval_key()
    assert SCHEMA_VERSION == 1 and key.schema_version == 1 and "schema_version" not in key.payload()
    with pytest.raises(StoreError, match="schema version 2 .* newer advbench"):
        EvalRunKey.from_stored({**key.payload(), "schema_version": 2})
    monkeypatch.setattr(run_key, "SCHEMA_VERSION", 2)
    bumped = dataclasses.replace(key, schema_version=2)
    assert bumped.payload()["schema_version"] == 2 and bumped.key() != key.key()
    assert EvalRunKey.from_stored(bumped.payload()) == bumped


@pytest.mark.parametrize("change, message", [
    ({"eps": None}, r"stored run config: EvalRunKey\.eps must be a tuple, got NoneType None"),
    ({"seed": "0"}, r"stored run config: EvalRunKey\.seed must be int, got str '0'"),
    ({"checks": "no"}, r"stored run config: EvalRunKey\.checks must be bool, got str 'no'"),
    ({"attacks": [{"name": "pgd"}]}, r"stored run config\.attacks\[0\] lacks the field 'config'"),
    ({"attacks": [{"name": 5, "config": {}}]}, r"stored run config\.attacks\[0\]: AttackKey\.name must be str, got int 5"),
    ({"eps": [0.1, "0.2"]}, r"EvalRunKey\.eps must be float, got str '0.2'"),
    ({"adaptations": {"pgd:steps=5": {"eot_draws": 1, "bpda": True, "stochastic_model": False, "new": 1}}}, r"has unknown field\(s\) 'new'"),
    ({"adaptations": {"other": {"eot_draws": 1, "bpda": True, "stochastic_model": False}}}, r"adaptations name attacks the run does not have"),
    ({"attacks": []}, r"an evaluation needs at least one attack"),
    ({"escalation": {"random": True, "attacks": []}}, r"escalated to a random model"),
])
def test_a_bad_stored_config_is_one_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(StoreError, match=message) as err:
        EvalRunKey.from_stored({**some_eval_key().payload(), **change})
    assert "\n" not in str(err.value)


def test_a_missing_field_is_one_line() -> None:
    config = some_certify_key().payload()
    del config["alpha"]
    with pytest.raises(StoreError, match=r"stored run config lacks the field 'alpha'"):
        CertifyRunKey.from_stored(config)
    with pytest.raises(StoreError, match=r"lacks the field 'kind'"):
        CertifyRunKey.from_stored({k: v for k, v in some_certify_key().payload().items() if k != "kind"})


def test_an_escalation_is_undone_before_the_key_is_rebuilt() -> None:
    key = some_eval_key()
    extra = {"config": {"n_queries": 5000}, "name": "pgd:rel_stepsize=0.05,restarts=3,steps=100"}
    chosen = {"eot_draws": 1, "bpda": True, "stochastic_model": False, "log_outputs": True}
    stored = {**key.payload(), "attacks": [*key.payload()["attacks"], extra],
              "adaptations": {"pgd:steps=5": chosen, extra["name"]: chosen},
              "escalation": {"attacks": ["pgd:steps=100,restarts=3,rel_stepsize=0.05", "transfer:pgd:steps=50"], "log_outputs": True, "random": False}}
    assert EvalRunKey.from_stored(stored) == key


def test_zero_attacks_are_refused_as_the_spec_refuses_them() -> None:
    with pytest.raises(UsageError, match="at least one attack"):
        dataclasses.replace(some_eval_key(), attacks=(), adaptations=())


def test_a_run_escalated_to_log_outputs_rebuilds_its_key(tmp_path: Path) -> None:
    """The checks find probabilities and attack their log: the stored adaptations say so, the key
    hashed those before the checks."""
    from advbench.engine.evaluate import evaluate_plan
    from advbench.engine.spec import Runtime

    net, x, y = tiny()
    plan = EvalPlan.from_objects(nn.Sequential(net, nn.Softmax(dim=1)), x, y, attacks=("fgsm",), checks=True, check_n=6, device="cpu")
    evaluate_plan(plan, Runtime(db=tmp_path / "runs.sqlite", device="cpu"))
    with sqlite3.connect(tmp_path / "runs.sqlite") as conn:
        key, stored = conn.execute("SELECT config_key, config FROM runs").fetchone()
    config = json.loads(stored)
    assert config["escalation"]["log_outputs"] and config["adaptations"]["fgsm"]["log_outputs"]
    assert EvalRunKey.from_stored(config).key() == key


def test_stored_runs_mean_the_cpu_without_tf32_and_old_certificates_their_generator_noise(tmp_path: Path) -> None:
    """Every shipped run was computed on the CPU: its rebuilt key says so without writing it.
    Certifications stored before the counter-based noise keep noise="torch-generator", so a new
    run of the same command (noise="counter") gets a new key instead of resuming into them."""
    runs = shipped_runs(tmp_path)
    for _, _, kind, key, config in runs:
        rebuilt = KEYS[kind].from_stored(config)
        assert rebuilt.device == "cpu" and not rebuilt.tf32
        assert not {"device", "tf32", "noise"} & set(rebuilt.payload())
        if kind == "certify":
            assert rebuilt.noise == "torch-generator"
            now = dataclasses.replace(rebuilt, noise=CertifyRunKey.__dataclass_fields__["noise"].default)
            assert now.noise == "counter" and now.payload()["noise"] == "counter" and now.key() != key


def test_the_plans_record_the_device_class_and_tf32_only_on_cuda() -> None:
    net, x, y = tiny()
    for plan in (EvalPlan.from_objects(net, x, y, attacks=("fgsm",), device="cpu", tf32=True),
                 CertifyPlan.from_objects(net, x, y, device="cpu", tf32=True)):
        assert plan.work_device == "cpu" and not plan.tf32 and "device" not in plan.payload()
        on_gpu = dataclasses.replace(plan, work_device="cuda", tf32=True)  # a Ray driver's plan for GPU workers
        assert on_gpu.payload()["device"] == "cuda" and on_gpu.payload()["tf32"] is True
        assert dataclasses.replace(plan, work_device="cuda").payload()["device"] == "cuda"
        assert "tf32" not in dataclasses.replace(plan, work_device="cuda").payload()
    with pytest.raises(ValueError, match="tf32 is a CUDA setting"):
        dataclasses.replace(some_eval_key(), tf32=True)
    with pytest.raises(StoreError, match="device must be one of cpu, cuda"):
        EvalRunKey.from_stored({**some_eval_key().payload(), "device": "tpu"})
