"""Models random at inference draw per sample: batching, order and resumes change nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO
from torch import nn

from advbench.core import seeding
from advbench.core.seeding import (
    hash_keys,
    mix_keys,
    mix_parts,
    normal_from_hashes,
    normal_from_hashes_many,
    normal_rows,
    row_keys,
    stream_hashes,
    uniform_from_hashes,
    uniform_rows,
)
from advbench.models import MODELS
from advbench.models.noise import GaussianNoise
from advbench.models.randomness import InputHistory
from advbench.models.wrapper import RobustModel

SHAPE = (1, 12, 12)
NOISY = ["gauss", "pni-w", "cpni-w", "pni-a", "cpni-a", "cpni-w-smooth-soft"]


class Gauss(nn.Module):
    """GaussianNoise at inference, then a linear layer: logits move with every draw."""

    def __init__(self) -> None:
        super().__init__()
        self.noise = GaussianNoise(sigma=0.3, inference_sigma=0.3)
        self.fc = nn.Linear(144, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.noise(x).flatten(1))


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "gauss":
        return Gauss()
    return MODELS.get(name).build(in_channels=1, num_classes=10, width=4)


def wrap(net: nn.Module) -> RobustModel:
    return RobustModel(net, SHAPE, 10, mean=[0.5], std=[0.25])


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(64, *SHAPE, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("name", NOISY)
def test_a_sample_gets_the_same_logits_in_any_batch(name: str, images: torch.Tensor) -> None:
    model = wrap(build(name))
    assert model.stochastic
    with torch.no_grad():
        whole = model.reseed(0)(images)
        single = model.reseed(0)(images[[7]])
        five = model.reseed(0)(images[5:10])
        shuffled = model.reseed(0)(images.flip(0))
        again = model.reseed(0)(images)
    # Same noise; the float kernels may round differently for different batch sizes.
    torch.testing.assert_close(single[0], whole[7], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(five[2], whole[7], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shuffled.flip(0), whole, rtol=1e-5, atol=1e-5)
    assert torch.equal(again, whole)  # same batch, same seed: bit for bit


@pytest.mark.parametrize("name", NOISY)
def test_batches_of_a_run_match_the_whole_without_reseeding(name: str, images: torch.Tensor) -> None:
    """What a run with batch size 5 and one with 12 see: each input's history is its own."""
    net = build(name)
    split, whole = wrap(net), wrap(net)
    with torch.no_grad():
        parts = [torch.cat([split(images[i : i + 5]), split(images[i : i + 5])], 1) for i in range(0, 20, 5)]
        full = torch.cat([whole(images[:20]), whole(images[:20])], 1)
    torch.testing.assert_close(torch.cat(parts), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["pni-w", "cpni-w"])
def test_a_pass_draws_the_same_with_its_layers_draws_made_together_or_not(
    name: str, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches draw every fixed-shape layer's noise at once (`DrawScope`), larger ones layer
    by layer: the same bits, without and with autograd (which must not see the shared buffer
    change under it)."""
    import advbench.models.randomness as randomness

    model, x = wrap(build(name)), images[:3]
    together_calls = []
    draw_together = randomness.normal_from_hashes_many
    monkeypatch.setattr(
        randomness,
        "normal_from_hashes_many",
        lambda *args: together_calls.append(1) or draw_together(*args),
    )

    def passes(limit: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        monkeypatch.setattr(randomness, "BATCHED_DRAW_LIMIT", limit)
        with torch.no_grad():
            plain = model.reseed(0)(x)
        leaf = x.clone().requires_grad_(True)
        logits = model.reseed(0)(leaf)
        (grad,) = torch.autograd.grad(logits.logsumexp(1).sum(), leaf)
        return plain, logits.detach(), grad

    together = passes(1 << 30)
    assert len(together_calls) == 2  # one per pass
    one_by_one = passes(0)
    assert len(together_calls) == 2
    for a, b in zip(together, one_by_one):
        assert torch.equal(a, b)
    assert torch.equal(together[0], together[1])  # in place without autograd, out of place with it


@pytest.mark.parametrize("name", NOISY)
def test_repeated_passes_draw_fresh_noise_and_seeds_differ(name: str, images: torch.Tensor) -> None:
    model = wrap(build(name))
    x = images[:8]
    with torch.no_grad():
        first, second = model.reseed(0)(x), model(x)
        other_seed = model.reseed(1)(x)
    def differs(a: torch.Tensor, b: torch.Tensor) -> bool:  # in every row
        return bool(((a - b).abs().amax(dim=1) > 1e-6).all())

    assert differs(first, second)  # EOT needs a new draw every pass
    assert differs(first, other_seed)


def test_gaussian_noise_is_exactly_the_row_draw_and_layers_are_released(images: torch.Tensor) -> None:
    noise = GaussianNoise(sigma=0.0, inference_sigma=0.5)
    model = RobustModel(nn.Sequential(noise), SHAPE, 10)
    with torch.no_grad():
        whole = model(images)
        model.reseed(0)
        single = model(images[[30]])
    assert torch.equal(single[0], whole[30])  # elementwise noise: batching changes no bit
    assert abs(float((whole - images).std()) - 0.5) < 0.01
    assert noise.draws is None  # the scope ends with the forward pass


def test_training_draws_from_torch_rng(images: torch.Tensor) -> None:
    """The bare network and the training wrapper (unfrozen) keep torch's RNG, noise on."""
    for name in ("pni-w", "cpni-a"):
        net = build(name).train()
        torch.manual_seed(5)
        a = net(images[:4])
        torch.manual_seed(5)
        b = net(images[:4])
        assert torch.equal(a, b) and not torch.equal(a, net(images[:4]))
    layer = GaussianNoise(sigma=0.2).train()
    torch.manual_seed(1)
    out = layer(images)
    torch.manual_seed(1)
    torch.testing.assert_close(out, images + 0.2 * torch.randn_like(images))
    trainer = RobustModel(build("pni-w"), SHAPE, 10, freeze=False)
    assert trainer.randomness is None and trainer.stochastic
    torch.manual_seed(2)
    c = trainer(images[:4])
    torch.manual_seed(2)
    assert torch.equal(c, trainer(images[:4]))


def test_sparse_coding_dropout_is_drawn_per_sample() -> None:
    from advbench.models.sparse_coding import SparseCodingFrontEnd

    torch.manual_seed(0)
    net = SparseCodingFrontEnd(in_channels=1, input_size=16, atoms=12, top_t=4, dropout=0.5, eps=0.1, ensemble=3, classifier_width=4)
    model = RobustModel(net, (1, 16, 16), 10)
    codes: list[torch.Tensor] = []  # the dropped-out codes, one per ensemble member
    net.quantizer.register_forward_hook(lambda module, args, out: codes.append(args[0]))
    x = torch.rand(6, 1, 16, 16)

    def masks(batch: torch.Tensor) -> torch.Tensor:
        codes.clear()
        with torch.no_grad():
            model(batch)
        return torch.stack(codes, 1) != 0  # (N, ensemble, atoms, h, w)

    model.reseed(0)
    whole = masks(x)
    model.reseed(0)
    part = masks(x[[4, 1]])
    assert torch.equal(part, whole[[4, 1]])
    assert not torch.equal(part[:, 0], part[:, 1])  # each ensemble member its own mask
    assert not torch.equal(part, masks(x[[4, 1]]))  # and every pass a fresh one


def test_row_keys_follow_the_exact_bits() -> None:
    x = torch.rand(5, 3, 4, 4)
    keys = row_keys(x)
    assert keys.dtype == torch.int64 and keys.shape == (5,) and len(set(keys.tolist())) == 5
    assert torch.equal(row_keys(x[[3, 1]]), keys[[3, 1]])
    y = x.clone()
    y[2, 1, 2, 3] = torch.nextafter(y[2, 1, 2, 3], torch.tensor(2.0))  # one ulp
    changed = row_keys(y) != keys
    assert changed.tolist() == [False, False, True, False, False]
    swapped = x.clone()
    swapped[0, 0, 0, 0], swapped[0, 0, 0, 1] = x[0, 0, 0, 1], x[0, 0, 0, 0]
    assert row_keys(swapped)[0] != keys[0]  # positions count, not just the values


def test_row_draws_depend_on_key_and_stream_only() -> None:
    keys = torch.randint(0, 2**62, (300,), generator=torch.Generator().manual_seed(0))
    z = normal_rows(keys, (2, 501))
    torch.testing.assert_close(normal_rows(keys[[17, 4]], (2, 501)), z[[17, 4]], rtol=0, atol=0)
    assert not torch.equal(z, normal_rows(keys, (2, 501), stream=1))
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1.0) < 0.01
    corr = torch.corrcoef(z.flatten(1)[:50])
    assert float((corr - torch.eye(50)).abs().max()) < 0.15  # rows are independent
    u = uniform_rows(keys, (1001,))
    assert 0.0 < float(u.min()) and float(u.max()) < 1.0 and abs(float(u.mean()) - 0.5) < 0.01


def test_row_draws_are_the_stored_runs_draws() -> None:
    """The values every stored run of a random model was computed with: a change of the hash, of
    the order parts are mixed in, or of a shortcut (hashed keys, int parts hashed in Python) that
    changes a bit fails here."""
    keys = torch.tensor([0, 1, 2**40 + 7])
    assert mix_keys(keys, 5, -3).tolist() == [3805669845, 3641906249, 349135544]
    assert torch.equal(mix_keys(keys, torch.tensor(5), torch.tensor(-3)), mix_keys(keys, 5, -3))
    z = normal_rows(keys, (3,), stream=5)
    assert z[0].tolist() == pytest.approx([-0.26898387, 0.99592024, -1.00742924], abs=1e-7)
    assert z[2].tolist() == pytest.approx([-0.83902955, 1.01526678, -0.63353747], abs=1e-7)
    assert torch.equal(normal_from_hashes(stream_hashes(hash_keys(keys), (5,))[0], (3,)), z)
    u = uniform_rows(keys, (2,), stream=2**33 + 1)
    assert u[1].tolist() == pytest.approx([0.52967358, 0.38863203], abs=1e-7)
    assert torch.equal(uniform_from_hashes(stream_hashes(hash_keys(keys), (2**33 + 1,))[0], (2,)), u)
    # Wider rows, exactly: log, cos and sin may round differently in their vectorized body and
    # scalar tail, so a change of the rows' memory layout can change bits here.
    wide = normal_rows(keys, (2, 37), stream=9)
    assert wide[1, 0, [0, 17, 18, 36]].tolist() == [
        0.4070988595485687, 0.1798621416091919, 0.5535576343536377, 0.8617871403694153
    ]
    assert wide[2, 1, [5, 35, 36]].tolist() == [
        1.221683144569397, -1.289421796798706, 0.5186832547187805
    ]


def test_stream_hashes_are_each_streams_mix() -> None:
    hashes = hash_keys(torch.tensor([3, 2**50 + 1, -7]))
    streams = (0, 5, 2**40 + 3, -2)
    batched = stream_hashes(hashes, streams)
    assert all(torch.equal(batched[i], mix_parts(hashes, s)) for i, s in enumerate(streams))


@pytest.mark.parametrize("rows", [1, 3])
def test_draws_made_together_are_the_draws_made_one_by_one(rows: int) -> None:
    """Odd and even sizes, and more elements than one cache-sized chunk of the integer work."""
    shapes = ((3,), (4, 5), (7, 3, 3), (1,), (2, 70001))
    assert rows * sum(torch.Size(s).numel() for s in shapes) > seeding._CPU_BLOCK
    hashes = stream_hashes(hash_keys(torch.arange(rows) * 977), tuple(range(len(shapes))))
    together = normal_from_hashes_many(hashes, shapes)
    for h, shape, draw in zip(hashes, shapes, together):
        assert draw.shape == (rows, *shape)
        assert torch.equal(draw, normal_from_hashes(h, shape))


def test_input_history_counts_each_input() -> None:
    history = InputHistory()
    a = torch.tensor([5, 9, 5, 2])
    assert history.occurrences(a).tolist() == [0, 0, 1, 0]
    assert history.occurrences(torch.tensor([9, 7, 5])).tolist() == [1, 0, 2]
    assert history.occurrences(torch.tensor([-3, 7, 7])).tolist() == [0, 1, 2]
    # Every forwarded row, sorted, repeats kept (so no lookup or merge needs a host sync).
    assert history.keys.tolist() == [-3, 2, 5, 5, 5, 7, 7, 7, 9, 9] and len(history) == 10
    history.clear()
    assert history.occurrences(a).tolist() == [0, 0, 1, 0]


def _rows(db: Path) -> tuple[list[tuple], list[tuple]]:
    with sqlite3.connect(db) as conn:
        samples = conn.execute("SELECT sample_idx, attack, eps, adv_pred, success, correct_draws, draws FROM samples ORDER BY sample_idx, attack, eps").fetchall()
        clean = conn.execute("SELECT sample_idx, pred, correct_draws, draws FROM clean ORDER BY sample_idx").fetchall()
    return samples, clean


def test_eval_of_a_random_model_stores_the_same_rows_for_any_batch_size(tmp_path: Path) -> None:
    """cpni-w-smooth-soft (CPNI-W noise + smoothing, random at inference) through the CLI."""
    dbs = []
    for batch_size in (5, 12):
        db = tmp_path / f"b{batch_size}.sqlite"
        args = ["eval", "--model", "cpni-w-smooth-soft", "--attack", "fgsm", "--eps", "0.05", "--n", "12",
                "--batch-size", str(batch_size), "--no-checks", "--db", str(db)]
        proc = subprocess.run([sys.executable, "-m", "advbench", *args], capture_output=True, text=True, cwd=REPO, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr
        dbs.append(db)
    samples_a, clean_a = _rows(dbs[0])
    samples_b, clean_b = _rows(dbs[1])
    assert len(samples_a) == 12 and len(clean_a) == 12
    assert all(row[-1] >= 16 for row in clean_a)  # judged by votes
    assert samples_a == samples_b
    assert clean_a == clean_b


def test_a_copied_model_draws_like_the_original(images: torch.Tensor) -> None:
    import copy

    model = wrap(build("cpni-w"))
    twin = copy.deepcopy(model)  # layer streams follow the names, not the objects
    with torch.no_grad():
        assert torch.equal(model(images[:6]), twin(images[:6]))
