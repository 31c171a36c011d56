"""Training recipes: every one trains a tiny model end to end on digits, and each has its defining property."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from advbench.core.threat import ThreatModel
from advbench.models import MODELS
from advbench.models.card import load_model
from advbench.models.paper import paper_facts
from advbench.train import RECIPES, TrainConfig, config_for, train_model
from advbench.train.adversary import maximize
from advbench.train.recipes import Polarizer, StepContext, perturb_weights

DIGITS = dict(dataset="digits", batch_size=64, crop_pad=0, flip=False, val_images=100, at_eps=0.1, at_steps=3)
SMALL_RESNET = {"width": 4}
SMALL = {
    # recipe -> (model, model_kwargs) sized for 8x8 digits
    "normal": ("smooth-v", {"input_size": 8}),
    "pgd-at": ("rn18-at", SMALL_RESNET),
    "fast-at": ("madry-cnn-fast-at", {"input_size": 8}),
    "trades": ("madry-cnn-trades", {"input_size": 8}),
    "alp": ("rn18-alp", SMALL_RESNET),
    "kl-pairing": ("smooth-l", {"input_size": 8}),
    "mart": ("rn18-mart", SMALL_RESNET),
    "fat": ("rn18-fat", SMALL_RESNET),
    "awp": ("rn18-awp", SMALL_RESNET),
    "trades-awp": ("rn18-trades-awp", SMALL_RESNET),
    "cpni-at": ("pni-w", {"width": 4}),
    "hah": ("hah-vgg16", {"width": 8}),
    "polarizer": ("pfe-madry", {"input_size": 8, "filters": 4}),
    "sparse-coding": ("sc-frontend", {"input_size": 8, "atoms": 16, "top_t": 4, "decoder_channels": 4, "classifier_width": 4, "ensemble": 2}),
}


def test_every_model_has_a_recipe_a_cpu_config_and_paper_facts() -> None:
    for name in MODELS.names():
        spec = MODELS.get(name)
        RECIPES.get(spec.recipe)
        config = config_for(name)
        # CPU-sized recipes: ResNet18s at reduced width for a few epochs; the small CNNs, whose
        # epoch takes seconds to a minute, up to 20 (8 with 7-step PGD-AT, ~3 min an epoch); the
        # polarizer the dissertation's 20 per stage (three stages, ~35 s an epoch).
        small_cnn = spec.factory.__name__ in ("MadryCNN", "AlexNet")
        max_epochs = {"normal": 20, "pgd-at": 8}.get(spec.recipe, 4) if small_cnn else 60 if spec.recipe == "polarizer" else 4
        assert config.epochs <= max_epochs and (config.model_kwargs or spec.factory.__name__ not in ("ResNet18",)), name
        facts = paper_facts(name)
        assert facts.get("paper", "").endswith(".txt") and facts.get("section"), name
        assert isinstance(facts.get("reported"), list), name


def test_every_recipe_has_a_tiny_end_to_end_case() -> None:
    assert set(SMALL) | {"epgd", "gauss"} == set(RECIPES.names())


@pytest.mark.parametrize("recipe", sorted(SMALL))
def test_recipe_trains_end_to_end(tmp_path, recipe: str) -> None:
    name, kwargs = SMALL[recipe]
    epochs = 3 if recipe == "polarizer" else 1
    extra = {"dictionary_steps": 20} if recipe == "sparse-coding" else {}  # the default 1000 steps take minutes
    config = config_for(name, **DIGITS, epochs=epochs, model_kwargs=kwargs, **extra)
    card = train_model(config, tmp_path / "digits", torch.device("cpu"))
    assert card.training["recipe"] == recipe and len(card.training["history"]) == epochs
    assert card.training.get("dictionary_steps") == config.dictionary_steps
    assert all(math.isfinite(h["loss"]) for h in card.training["history"])
    assert (card.training["history"][0]["val_robust_acc"] is not None) == RECIPES.get(recipe).adversarial
    model, loaded = load_model(name, "digits", tmp_path)
    assert loaded.sha256 == card.sha256 and loaded.paper_facts["paper"].endswith(".txt")
    assert model.predict(torch.rand(4, 1, 8, 8)).shape == (4,)


def test_fine_tuning_recipes_start_from_the_base_checkpoint(tmp_path) -> None:
    common = {**DIGITS, "model_kwargs": {"width": 4}, "max_train": 300}
    train_model(config_for("cpni-w", **common, epochs=1), tmp_path / "digits", torch.device("cpu"))
    base, _ = load_model("cpni-w", "digits", tmp_path)
    copy = train_model(config_for("cpni-w-smooth-soft", **common), tmp_path / "digits", torch.device("cpu"))
    assert copy.training["epochs"] == 0 and copy.training["base_training"]["recipe"] == "cpni-at"
    smoothed, _ = load_model("cpni-w-smooth-soft", "digits", tmp_path)
    assert all(torch.equal(v, smoothed.net.base.state_dict()[k]) for k, v in base.net.state_dict().items())
    for name in ("cpni-w-epgd", "cpni-w-gauss"):
        card = train_model(config_for(name, **common, epochs=1), tmp_path / "digits", torch.device("cpu"))
        assert card.training["history"][0]["val_robust_acc"] is not None
        tuned, _ = load_model(name, "digits", tmp_path)
        assert tuned.stochastic and not torch.equal(tuned.net.base.fc.weight, base.net.fc.weight)


def test_awp_perturbation_is_removed_after_the_step() -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    from advbench.models.wrapper import RobustModel

    model = RobustModel(net, (1, 8, 8), 10, freeze=False)
    before = [p.detach().clone() for p in net.parameters()]
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    ctx = StepContext(model, TrainConfig("rn18-awp", awp_gamma=0.01), 0, 0.0)
    perturb_weights(ctx, lambda: F.cross_entropy(model(x), y))
    moved = net[1].weight.detach().clone()
    # The step is gamma * ||w|| in norm, towards higher loss.
    assert torch.allclose((moved - before[0]).norm(), 0.01 * before[0].norm(), rtol=1e-4)
    assert F.cross_entropy(model(x), y) > F.cross_entropy(torch.nn.functional.linear(x.flatten(1), before[0], before[1]), y)
    for undo in ctx.after_step:
        undo()
    assert all(torch.allclose(p, b) for p, b in zip(net.parameters(), before))


def test_friendly_pgd_stops_samples_once_fooled(digits_model, digits_data) -> None:
    x, y = digits_data[0][:64], digits_data[1][:64]
    wrong = digits_model.predict(x) != y
    threat, idx = ThreatModel("linf", 0.3), torch.arange(64)
    ce = lambda logits, rows: F.cross_entropy(logits, y[rows], reduction="none")  # noqa: E731
    frozen = maximize(digits_model, x, ce, threat, 5, 0.1, idx, 0, start="none", y=y, stop_after=0)
    full = maximize(digits_model, x, ce, threat, 5, 0.1, idx, 0, start="none")
    # tau = 0: an already misclassified sample never moves; the others do.
    assert bool(wrong.any()) and torch.equal(frozen[wrong], x[wrong])
    assert not torch.equal(full[wrong], x[wrong])
    assert ((frozen - x).abs().amax(dim=(1, 2, 3)) <= 0.3 + 1e-6).all()


def test_polarizer_stages_freeze_the_front_end_and_switch_the_quantizer_on() -> None:
    net = MODELS.get("pfe-madry").build(in_channels=1, input_size=8, filters=4)
    recipe, config = Polarizer(), TrainConfig("pfe-madry", epochs=6)
    assert [recipe.stage(e, 6) for e in range(6)] == [0, 0, 1, 1, 2, 2]
    recipe.start_epoch(net, 1, config)
    assert not net.quantize and all(p.requires_grad for p in net.front.parameters())
    recipe.start_epoch(net, 4, config)
    assert net.quantize and not any(p.requires_grad for p in net.front.parameters())


def test_adam_training_resumes_to_the_same_weights(tmp_path) -> None:
    config = config_for("smooth-vr", **DIGITS, epochs=2, model_kwargs={"input_size": 8})
    train_model(config, tmp_path / "a" / "digits", torch.device("cpu"))

    class Stop(Exception):
        pass

    def stop_after_first(log) -> None:  # noqa: ANN001
        raise Stop

    with pytest.raises(Stop):
        train_model(config, tmp_path / "b" / "digits", torch.device("cpu"), on_epoch=stop_after_first)
    train_model(config, tmp_path / "b" / "digits", torch.device("cpu"), resume=True)
    a, _ = load_model("smooth-vr", "digits", tmp_path / "a")
    b, _ = load_model("smooth-vr", "digits", tmp_path / "b")
    assert all(torch.equal(a.net.state_dict()[k], v) for k, v in b.net.state_dict().items())


@pytest.mark.parametrize("code", ["A1N2", "A2N1"])
def test_partial_adversarial_training_freezes_one_part_and_retrains_the_other(tmp_path, code: str) -> None:
    from advbench.train import train_partial
    from advbench.train.stages import split_modules

    config = config_for("madry-cnn", **DIGITS, epochs=1, model_kwargs={"input_size": 8, "hidden": 32})
    card = train_partial(code, "conv2", config, tmp_path / "digits", torch.device("cpu"))
    from advbench.models.card import ModelCard, build_from_card

    stage1_dir = tmp_path / "digits" / "stage1"
    stage1 = build_from_card(ModelCard.from_yaml(stage1_dir / "madry-cnn.yaml"), stage1_dir)
    final, _ = load_model("madry-cnn", "digits", tmp_path)
    early, late = split_modules(final.net, "conv2")
    assert [m for m in early] == [final.net.conv1, final.net.conv2] and late == [final.net.fc1, final.net.fc2]
    # A1N2: earlier layers adversarial in stage 1, then frozen; latter re-initialized, trained naturally.
    # A2N1: the whole net trained naturally first; latter layers frozen; earlier ones retrained adversarially.
    frozen, retrained = (("conv1", "fc1") if code == "A1N2" else ("fc1", "conv1"))
    assert torch.equal(getattr(final.net, frozen).weight, getattr(stage1.net, frozen).weight)
    assert not torch.equal(getattr(final.net, retrained).weight, getattr(stage1.net, retrained).weight)
    assert card.training["partial"] == code and card.training["recipe"] == ("normal" if code == "A1N2" else "pgd-at")


def test_layer_sweep_writes_one_row_per_cutoff(tmp_path) -> None:
    from advbench.analysis.layers import layer_sweep

    result, paths = layer_sweep(
        "madry-cnn", "N1A2", ["conv1", "fc1"], tmp_path, torch.device("cpu"), dataset="digits", n=60,
        **{**{k: v for k, v in DIGITS.items() if k != "dataset"}, "epochs": 1, "model_kwargs": {"input_size": 8, "hidden": 32}},
    )
    assert result.column("cutoff") == ["conv1", "fc1"]
    assert all(0 <= a <= 1 for a in result.column("pgd_accuracy")) and paths["png"].stat().st_size > 0


def test_train_partial_passes_data_dir_and_resume_to_both_stages(tmp_path, monkeypatch) -> None:
    from advbench.train import partial

    calls = []
    monkeypatch.setattr(partial, "train_model", lambda config, out_dir, device, *args, **kw: calls.append((config, out_dir, args, kw)))
    config = config_for("madry-cnn", **DIGITS, epochs=1)
    partial.train_partial("N1A2", "conv2", config, tmp_path, torch.device("cpu"), data_dir="/data", resume=True)
    assert [c.recipe for c, *_ in calls] == ["normal", "pgd-at"] and [d for _, d, *_ in calls] == [tmp_path / "stage1", tmp_path]
    assert all(args == ("/data", True) for _, _, args, _ in calls)
    calls.clear()
    partial.train_partial("N1A2", "conv2", config, tmp_path, torch.device("cpu"))
    assert all(args == (None, False) for _, _, args, _ in calls)


def test_resumed_partial_training_keeps_a_finished_stage_1(tmp_path, monkeypatch) -> None:
    from advbench.train import partial
    from advbench.train.loop import finished_card

    config = config_for("madry-cnn", **DIGITS, epochs=0, model_kwargs={"input_size": 8, "hidden": 32})
    stage1 = TrainConfig(**{**config.__dict__, "recipe": "normal"})
    assert finished_card(stage1, tmp_path / "stage1") is None
    card = train_model(stage1, tmp_path / "stage1", torch.device("cpu"))
    assert finished_card(stage1, tmp_path / "stage1") == card
    assert finished_card(TrainConfig(**{**stage1.__dict__, "lr": 0.2}), tmp_path / "stage1") is None
    assert finished_card(TrainConfig(**{**stage1.__dict__, "model_kwargs": {"input_size": 8, "hidden": 16}}), tmp_path / "stage1") is None
    calls = []
    monkeypatch.setattr(partial, "train_model", lambda config, out_dir, *args, **kw: calls.append(config.recipe))
    partial.train_partial("N1A2", "conv2", config, tmp_path, torch.device("cpu"), resume=True)
    assert calls == ["pgd-at"]  # stage 2 only
    calls.clear()
    partial.train_partial("N1A2", "conv2", config, tmp_path, torch.device("cpu"))
    assert calls == ["normal", "pgd-at"]  # without resume both stages train again


def test_interrupted_partial_training_resumes_to_the_same_weights(tmp_path) -> None:
    from advbench.train import train_partial

    config = config_for("madry-cnn", **DIGITS, epochs=2, max_train=400, model_kwargs={"input_size": 8, "hidden": 32})
    train_partial("A1N2", "conv2", config, tmp_path / "a" / "digits", torch.device("cpu"))

    class Stop(Exception):
        pass

    epochs_seen = []

    def stop_in_stage_2(log) -> None:
        epochs_seen.append(log.epoch)
        if len(epochs_seen) == 3:  # stage 1's two epochs, then stage 2's first
            raise Stop

    with pytest.raises(Stop):
        train_partial("A1N2", "conv2", config, tmp_path / "b" / "digits", torch.device("cpu"), on_epoch=stop_in_stage_2)
    epochs_seen.clear()
    train_partial("A1N2", "conv2", config, tmp_path / "b" / "digits", torch.device("cpu"), resume=True, on_epoch=lambda log: epochs_seen.append(log.epoch))
    assert epochs_seen == [2]  # stage 1 kept, stage 2 continued from its state
    a, _ = load_model("madry-cnn", "digits", tmp_path / "a")
    b, _ = load_model("madry-cnn", "digits", tmp_path / "b")
    assert all(torch.equal(a.net.state_dict()[k], v) for k, v in b.net.state_dict().items())


def test_layer_sweep_uses_the_seed_and_data_dir_it_is_given(tmp_path, monkeypatch) -> None:
    from dataclasses import replace

    from advbench.analysis import layers

    seen: dict[str, object] = {}

    def fake_partial(code, cutoff, config, out_dir, device, data_dir=None, resume=False):
        seen.update(train_seed=config.seed, at_eps=config.at_eps, data_dir=data_dir)
        return train_model(replace(config, epochs=0), out_dir, device, data_dir)

    def spy_indices(labels, n, seed=0, balanced=False):
        seen["subset_seed"] = seed
        return select_indices(labels, n, seed, balanced)

    def spy_attack(text):
        label, attack, config = build_attack(text)

        def call(model, x, y, threat, indices=None, seed=0):
            seen["attack_seed"] = seed
            return attack(model, x, y, threat, indices, seed)

        return label, call, config

    from advbench.attacks import build_attack
    from advbench.data import select_indices

    monkeypatch.setattr(layers, "train_partial", fake_partial)
    monkeypatch.setattr(layers, "select_indices", spy_indices)
    monkeypatch.setattr(layers, "build_attack", spy_attack)
    result, _ = layers.layer_sweep(
        "madry-cnn", "A1N2", ["conv2"], tmp_path, torch.device("cpu"), dataset="digits", n=20, eps=0.05, seed=7,
        data_dir=str(tmp_path), **{**{k: v for k, v in DIGITS.items() if k != "dataset"}, "model_kwargs": {"input_size": 8, "hidden": 32}},
    )
    assert seen == {"subset_seed": 7, "train_seed": 7, "attack_seed": 7, "at_eps": 0.05, "data_dir": str(tmp_path)}
    assert result.config["seed"] == 7
