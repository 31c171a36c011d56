"""Every registered model builds; every shipped Fashion-MNIST checkpoint loads and is accurate."""

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import load_script

from advbench.data import load_dataset, select_indices
from advbench.data.registry import dataset_labels
from advbench.models import MODELS
from advbench.models.card import REPO_ZOO, ModelCard, card_path, load_model
from advbench.models.kernel_pooling import KAPConv2d
from advbench.models.noise import GaussianNoise

SHIPPED = sorted(p.stem for p in (REPO_ZOO / "fashion-mnist").glob("*.yaml"))


def test_the_three_foundation_checkpoints_are_shipped() -> None:
    assert {"rn18-nt", "rn18-nt-noise", "kap-rn18"} <= set(SHIPPED)


@pytest.mark.parametrize("name", MODELS.names())
def test_registered_model_builds_and_runs(name: str) -> None:
    net = MODELS.get(name).build(in_channels=1, num_classes=10).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    "name,size",
    # Stride paper §IV-B on 32x32 CIFAR-10: the last stage's feature map per stride configuration.
    [("rn18-nt", 4), ("rn18-s1122", 8), ("rn18-s1212", 8), ("rn18-s2222", 2), ("rn18-s1112", 16),
     ("rn18-up2x-nearest", 8), ("rn18-up3x-bilinear", 12), ("preact-rn18", 4), ("preact-rn18-s1122", 8),
     ("vgg16", 1), ("vgg16-s11222", 4), ("alexnet", 2), ("alexnet-s1122", 8)],
)
def test_stride_and_upsampling_feature_sizes(name: str, size: int) -> None:
    net = MODELS.get(name).build(in_channels=3, num_classes=10, width=8).eval()
    with torch.no_grad():
        assert net.features(torch.rand(1, 3, 32, 32)).shape[-2:] == (size, size)


def test_upsampling_modes_differ_and_nearest_repeats_pixels() -> None:
    from advbench.models.upsample import InputUpsample

    x = torch.rand(1, 1, 4, 4)
    near = InputUpsample(2, "nearest")(x)
    assert near.shape == (1, 1, 8, 8) and torch.equal(near[..., ::2, ::2], x) and torch.equal(near[..., 1::2, 1::2], x)
    assert not torch.equal(InputUpsample(2, "bilinear")(x), near)


def test_register_model_decorator_adds_and_refuses_duplicates() -> None:
    from advbench.models import register_model

    @register_model("test-only-cnn", family="test", paper="-", description="registered by a test", depth=1)
    def factory(**kwargs):
        from advbench.models.cnn import ShallowCNN

        return ShallowCNN(**kwargs)

    try:
        assert MODELS.get("test-only-cnn").build(in_channels=1).body[0].conv.in_channels == 1
        with pytest.raises(ValueError, match="twice"):
            register_model("test-only-cnn", family="test", paper="-", description="again")(factory)
    finally:
        MODELS._entries.pop("test-only-cnn")


# Families whose models are random at inference by design (noise injection, smoothing, dropout kept at test time).
RANDOM_AT_INFERENCE = {"noise-injection", "smoothing", "front-end"}


def test_shipped_checkpoints_fit_the_size_budget() -> None:
    files = list((REPO_ZOO / "fashion-mnist").glob("*.safetensors"))
    assert sum(f.stat().st_size for f in files) < 100 * 1024 * 1024
    assert all(f.stat().st_size < 12 * 1024 * 1024 for f in files)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint(name: str) -> None:
    path = card_path(name, "fashion-mnist")
    assert path is not None, f"no shipped card for {name}"
    model, card = load_model(name, "fashion-mnist")  # verifies the sha256
    spec = MODELS.get(name)
    assert card.training["recipe"] == spec.recipe and card.paper_facts.get("paper", "").endswith(".txt")
    assert card.threat_model == {"norm": "linf", "eps": 0.1}
    # Training-time noise only, unless randomness at inference is the defense (KAP §4.1; PNI; smoothing).
    assert not model.stochastic or spec.family in RANDOM_AT_INFERENCE
    assert "pgd20_linf_0.1" in card.metrics, "measure it: python scripts/zoo_metrics.py --new"
    idx = select_indices(dataset_labels("fashion-mnist"), 500, seed=1)
    data = load_dataset("fashion-mnist", "test", indices=idx)
    accuracy = (model.predict(data.images) == data.labels).float().mean().item()
    # The card's number was measured on its own test subset; 500 other images must agree within
    # sampling error (three standard errors of the difference, plus 2 points for random models).
    p, n_card = card.metrics["clean_accuracy"], card.metrics.get("test_images", 10000)
    tolerance = 3 * math.sqrt(p * (1 - p) * (1 / n_card + 1 / 500)) + (0.02 if model.stochastic else 0.0)
    assert abs(accuracy - p) < max(tolerance, 0.03)
    assert accuracy > 0.5
    noise = [m.sigma for m in model.modules() if isinstance(m, GaussianNoise)]
    kap = [m for m in model.modules() if isinstance(m, KAPConv2d)]
    if name == "rn18-nt":
        assert all(s == 0 for s in noise) and not kap
    elif name in ("rn18-nt-noise", "kap-rn18"):
        assert noise and all(s == pytest.approx(0.1) for s in noise)
    if name == "kap-rn18":
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(kap) == len(convs) and all(k.pool.kernel_size == 3 and k.pool.stride == 1 for k in kap)


def test_every_registered_model_has_a_shipped_checkpoint() -> None:
    missing = sorted(set(MODELS.names()) - set(SHIPPED))
    assert not missing, f"no Fashion-MNIST checkpoint yet for: {', '.join(missing)}"


ZOO_PAGES = {"full": ("notes", "zoo.md"), "compact": ("zoo.md",)}  # the lab notes' table, the zoo page's


@pytest.mark.parametrize("kind", sorted(ZOO_PAGES))
def test_zoo_table_is_what_the_cards_record(kind: str) -> None:
    # docs/zoo.md's compact table and docs/notes/zoo.md's full one are scripts/zoo_metrics.py's,
    # from the shipped cards: a checkpoint re-measured without its row re-made, or a number edited
    # by hand, fails here.
    zoo_metrics = load_script("zoo_metrics")
    header, row = (zoo_metrics.TABLE_HEADER, zoo_metrics.table_row) if kind == "full" else (zoo_metrics.COMPACT_HEADER, zoo_metrics.compact_row)
    rows = [row(ModelCard.from_yaml(card_path(name, "fashion-mnist"))) for name in SHIPPED]
    table = header + "\n" + "\n".join(rows) + "\n"
    assert table in REPO_ZOO.parent.joinpath("docs", *ZOO_PAGES[kind]).read_text()


@pytest.mark.parametrize("kind", sorted(ZOO_PAGES))
def test_write_table_remakes_the_zoo_table_in_place(kind: str, tmp_path: Path) -> None:
    # `zoo_metrics.py --write-table` is how the zoo's tables are refreshed after a measurement:
    # a stale row is replaced and the prose around the table is left as it was.
    zoo_metrics = load_script("zoo_metrics")
    header = zoo_metrics.TABLE_HEADER if kind == "full" else zoo_metrics.COMPACT_HEADER
    shipped = REPO_ZOO.parent.joinpath("docs", *ZOO_PAGES[kind]).read_text()
    first_row = shipped.index("\n| ", shipped.index(header) + len(header)) + 1
    stale = shipped[:first_row] + "| stale | row |\n" + shipped[first_row:]
    doc = tmp_path / "zoo.md"
    doc.write_text(stale)
    assert zoo_metrics.write_table(doc) == len(SHIPPED)
    assert doc.read_text() == shipped


def test_every_model_links_to_its_section_of_the_zoo_notes() -> None:
    zoo_metrics = load_script("zoo_metrics")
    notes = (REPO_ZOO.parent / "docs" / "notes" / "zoo.md").read_text()
    headings = {line[4:] for line in notes.splitlines() if line.startswith("### ")}
    anchors = {zoo_metrics.notes_anchor(name) for name in SHIPPED}
    assert anchors == set(zoo_metrics.GROUP_NAMES)  # every group has a model, every model a group
    # mkdocs' anchors of the notes' headings (mkdocs build --strict checks the links themselves)
    slugs = {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", h).strip().lower()) for h in headings}
    assert anchors <= slugs, anchors - slugs


def test_zoo_row_shows_the_default_evaluation_with_its_interval_and_verdict() -> None:
    zoo_metrics = load_script("zoo_metrics")
    card = ModelCard.from_yaml(card_path("madry-cnn-at", "fashion-mnist"))
    bare = replace(card, metrics={k: v for k, v in card.metrics.items() if k != "auto"})
    assert zoo_metrics.table_row(bare).split(" | ")[3:5] == ["-", "-"]
    measured = replace(card, metrics={**card.metrics, "auto": {"accuracy": 0.5, "n": 100, "run": "r", "verdict": "escalated"}})
    # Wilson 95 % interval of 50 / 100
    assert zoo_metrics.table_row(measured).split(" | ")[3:5] == ["50.0 [40.4, 59.6] (n=100)", "escalated"]
    with_draws = replace(card, metrics={**card.metrics, "auto": {"accuracy": 0.5, "n": 100, "run": "r", "verdict": "reliable", "eot": 5}})
    assert zoo_metrics.table_row(with_draws).split(" | ")[3] == "50.0 [40.4, 59.6] (n=100, EOT 5)"  # fewer draws than the default: said


def test_zoo_table_quotes_the_paper_number_of_the_models_own_variant() -> None:
    # sc-frontend-nodrop is the dissertation's T = 15 model: its headline is Table 4.5's 37.33 under
    # the strongest attack, not Table B.1's 59.91 (T = 1, one restart of 1000 steps).
    from advbench.models.paper import paper_facts

    zoo_metrics = load_script("zoo_metrics")
    facts = paper_facts("sc-frontend-nodrop")
    assert facts["variant"] == "T=15"
    cell = zoo_metrics.paper_headline(facts, "1-2-2-2")
    assert "37.33" in cell and "59.91" not in cell and "Table 4.5" in cell and "Table B.1" not in cell
    # numbers from two tables name both
    two = {**facts, "reported": [r for r in facts["reported"] if r.get("variant") == "T=15"]}
    assert "Table B.1" in zoo_metrics.paper_headline(two, "1-2-2-2")
    assert zoo_metrics.paper_headline(two, "1-2-2-2").count("Table") == 1  # clean and robust both from B.1


def test_sparse_coding_front_ends_as_the_dissertation_attacks_them() -> None:
    # The non-random encoder is the T = 15 model; attacks route gradients through the top U = 2T.
    spec = MODELS.get("sc-frontend-nodrop")
    assert spec.defaults["top_t"] == 15 and spec.cpu_train["model_kwargs"]["top_t"] == 15
    for name in ("sc-frontend", "sc-frontend-nodrop"):
        net = MODELS.get(name).build(in_channels=1, input_size=28, atoms=120, classifier_width=4)
        assert net.top.top_u == 2 * net.top.top_t
    model, card = load_model("sc-frontend-nodrop", "fashion-mnist")
    assert card.kwargs["top_t"] == 15 and model.net.top.top_u == 30
