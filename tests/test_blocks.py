"""Defining properties of the papers' building blocks, on hand-checkable cases."""

import math

import pytest
import torch

from advbench.models.kernel_pooling import KernelPool
from advbench.train.smooth_kernels import (
    model_smoothness,
    neighbour_penalty,
    smooth_kernel_regularizer,
)


def test_kap_on_linear_layer_equals_averaging_neighbouring_kernels() -> None:
    # KAP paper eq. 3: averaging the outputs of neighbouring kernels of a linear layer equals
    # applying the layer with each kernel replaced by the mean of its neighbours.
    torch.manual_seed(0)
    linear = torch.nn.Linear(5, 8, bias=False)
    pool = KernelPool(8, 3, 1, "avg", dims=1)
    x = torch.randn(4, 5)
    pooled = pool(linear(x).view(4, 8, 1, 1)).view(4, 8)
    w = linear.weight
    averaged = torch.stack([w[max(0, i - 1) : i + 2].mean(0) for i in range(8)])
    torch.testing.assert_close(pooled, x @ averaged.t())


def test_smooth_kernel_regularizer_by_hand_on_3x3() -> None:
    w = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]).view(1, 1, 3, 3) / 10
    # 4-neighbourhood: 6 horizontal pairs differ by 0.1, 6 vertical pairs by 0.3.
    r4 = 6 * 0.01 + 6 * 0.09
    # Diagonals: 4 pairs differ by 0.4, 4 anti-diagonal pairs by 0.2.
    r8 = r4 + 4 * 0.16 + 4 * 0.04
    scale = sum((i / 10) ** 2 for i in range(9))
    assert neighbour_penalty(w, 4).item() == pytest.approx(r4)
    assert neighbour_penalty(w, 8).item() == pytest.approx(r8)
    assert smooth_kernel_regularizer(w, 8).item() == pytest.approx(math.exp(r8 - scale))


def test_smooth_kernel_regularizer_prefers_smooth_kernels_and_sums_channels() -> None:
    smooth = torch.ones(2, 3, 3, 3)
    rough = smooth.clone()
    rough[..., 1, 1] = -1.0
    assert smooth_kernel_regularizer(smooth) < smooth_kernel_regularizer(rough)
    assert neighbour_penalty(rough).shape == (2, 3) and bool((neighbour_penalty(rough) == neighbour_penalty(rough[:1, :1])).all())
    mixed = torch.stack([smooth[0, 0], rough[0, 0]]).view(2, 1, 3, 3)
    torch.testing.assert_close(smooth_kernel_regularizer(mixed), (smooth_kernel_regularizer(smooth) + smooth_kernel_regularizer(rough)) / 2)
    conv = torch.nn.Conv2d(1, 2, 3)
    one_by_one = torch.nn.Conv2d(2, 2, 1)
    net = torch.nn.Sequential(conv, one_by_one)
    torch.testing.assert_close(model_smoothness(net), smooth_kernel_regularizer(conv.weight))


def test_vote_scores_by_hand() -> None:
    from advbench.models.smoothing import vote_scores

    # Two noisy copies, three classes: copy 1 ranks (2, 0, 1), copy 2 ranks (0, 2, 1).
    logits = torch.tensor([[[1.0, 0.0, 3.0]], [[5.0, 1.0, 2.0]]])
    torch.testing.assert_close(vote_scores(logits, "prediction"), torch.tensor([[0.5, 0.0, 0.5]]))
    # V(k) = 2^(1-k): class 0 gets 1/2 + 1, class 1 gets 1/4 + 1/4, class 2 gets 1 + 1/2; total 3.5.
    torch.testing.assert_close(vote_scores(logits, "weighted"), torch.tensor([[1.5, 0.5, 1.5]]) / 3.5)
    # V_c with c = 0.3: top class 1, second class c.
    torch.testing.assert_close(vote_scores(logits, "weighted", 0.3), torch.tensor([[1.3, 0.0, 1.3]]) / 2.6)
    torch.testing.assert_close(vote_scores(logits, "soft"), logits.softmax(-1).mean(0))


def test_smoothing_agrees_with_brute_force_vote() -> None:
    from advbench.models.smoothing import Smoothing

    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4)).eval()
    smooth = Smoothing(base, sigma=0.5, samples=25, mode="prediction", input_std=[0.5], seed=7).eval()
    x = torch.rand(6, 1, 4, 4)
    out = smooth(x)
    gen = torch.Generator().manual_seed(7)
    noise = torch.randn((25, 6, 1, 4, 4), generator=gen)
    votes = torch.zeros(6, 4)
    for i in range(25):  # the definition, one noisy copy at a time
        pred = base(x + noise[i] * (0.5 / 0.5)).argmax(1)
        votes[torch.arange(6), pred] += 1
    torch.testing.assert_close(out.exp(), votes / 25)
    assert torch.equal(out.argmax(1), votes.argmax(1))


def test_smoothed_model_is_stochastic_and_attackable_through_soft_surrogate() -> None:
    from advbench.models.smoothing import Smoothing
    from advbench.models.wrapper import RobustModel

    base = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    model = RobustModel(Smoothing(base, sigma=0.25, samples=16, mode="prediction"), (1, 4, 4), 3)
    assert model.stochastic and model.has_bpda
    x = torch.rand(5, 1, 4, 4, requires_grad=True)
    assert not model(x).requires_grad  # a hard vote has no gradient at all
    with model.attack_mode():
        model(x).max(1).values.sum().backward()
    assert float(x.grad.abs().sum()) > 0.0


def test_ternary_quantizer_outputs_three_levels_and_surrogate_has_gradients() -> None:
    from advbench.models.polarize import TernaryQuantizer

    q = TernaryQuantizer(threshold=0.3, steepness=10.0)
    z = torch.linspace(-1, 1, 201, requires_grad=True)
    out = q(z)
    assert set(out.unique().tolist()) <= {-1.0, 0.0, 1.0} and set(out.unique().tolist()) == {-1.0, 0.0, 1.0}
    assert out[z.detach().abs() < 0.29].abs().max() == 0 and torch.all(out[z.detach() > 0.31] == 1)
    assert not out.requires_grad  # the exact quantizer gives attacks nothing to follow
    q.use_surrogate = True
    out_attack = q(z)
    torch.testing.assert_close(out_attack.detach(), out.detach())  # forward values stay exact
    (grad,) = torch.autograd.grad(out_attack.sum(), z)
    assert float(grad.abs().sum()) > 0 and float(grad[100]) < float(grad[130])  # steepest at the threshold

    def no_surrogate(x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("surrogate computed without a gradient to route")

    q.surrogate = no_surrogate
    with torch.no_grad():  # forward-only attack steps (Square, predictions) get the exact values, bit for bit
        assert torch.equal(q(z), out.detach())


def test_bump_regularizers_by_hand() -> None:
    from advbench.models.polarize import bump_b1, bump_b2

    z = torch.tensor([0.0, 0.35, 0.3])
    torch.testing.assert_close(bump_b1(z, 0.35), torch.tensor([1.0, math.exp(-0.5), math.exp(-0.09 / 0.245)]))
    expected = math.exp(0.0) + math.exp(-(0.6**2) / (2 * 0.15**2))
    assert bump_b2(torch.tensor([0.3]), 0.3, 0.15).item() == pytest.approx(expected)


def test_l1_normalized_activations_are_bounded_by_the_input() -> None:
    from advbench.models.polarize import L1NormalizedConv2d, PolarizingFrontEnd

    conv = L1NormalizedConv2d(1, 8, 5)
    x = torch.rand(3, 1, 12, 12)
    with torch.no_grad():
        assert float(conv(x).abs().max()) <= float(x.abs().max()) + 1e-6  # |w.x| / ||w||_1 <= ||x||_inf
    net = PolarizingFrontEnd(in_channels=1, input_size=28).eval()
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_smooth_kernel_lambda_moves_training_towards_or_away_from_smooth_kernels(tmp_path, sign: float) -> None:
    from advbench.models.card import load_model
    from advbench.train import TrainConfig, train_model
    from advbench.train.smooth_kernels import neighbour_penalty

    def roughness(lam: float, name: str) -> float:
        config = TrainConfig("cnn1", dataset="digits", epochs=2, batch_size=64, lr=0.05, crop_pad=0, flip=False,
                             model_kwargs={"channels": 16}, smooth_lambda=lam)
        train_model(config, tmp_path / name / "digits", torch.device("cpu"))
        model, _ = load_model("cnn1", "digits", tmp_path / name)
        w = model.net.body[0].conv.weight
        return (neighbour_penalty(w).sum() / w.pow(2).sum()).item()

    plain, regularized = roughness(0.0, "plain"), roughness(sign * 0.1, "reg")
    assert math.isfinite(regularized)
    assert (regularized < 0.8 * plain) if sign > 0 else (regularized > 1.2 * plain)


def test_divisive_normalization_and_hah_block_are_scale_invariant() -> None:
    from advbench.models.hah import HaHBlock, divisive_normalization

    torch.manual_seed(0)
    y = torch.rand(2, 6, 5, 5)
    torch.testing.assert_close(divisive_normalization(3.7 * y), divisive_normalization(y), rtol=1e-5, atol=1e-6)
    block = HaHBlock(3, 8).eval()
    x = torch.rand(2, 3, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(block(5.0 * x), block(x), rtol=1e-4, atol=1e-5)


def test_channel_threshold_keeps_the_top_share_per_channel() -> None:
    from advbench.models.hah import channel_threshold

    z = torch.arange(100.0).view(1, 1, 10, 10).repeat(2, 3, 1, 1)
    kept = channel_threshold(z, keep=0.2)
    assert bool(((kept > 0).flatten(2).sum(2) == 20).all())


def test_hah_loss_by_hand_and_gradients_stay_in_the_block() -> None:
    from advbench.models.hah import HaHBlock, hah_loss

    y = torch.tensor([4.0, 1.0, 3.0, 0.0]).view(1, 4, 1, 1)
    assert hah_loss(y, top_k=1, anti_weight=0.5).item() == pytest.approx(4.0 - 0.5 * (1 + 3 + 0) / 3)
    earlier = torch.nn.Conv2d(3, 3, 3, padding=1)
    block = HaHBlock(3, 10).train()
    block(earlier(torch.rand(2, 3, 8, 8)))
    block.loss.backward()
    assert earlier.weight.grad is None  # the Hebbian loss never reaches earlier layers
    assert block.conv.weight.grad is not None and float(block.conv.weight.grad.abs().sum()) > 0


def test_hah_recipe_trains_hah_vgg16(tmp_path) -> None:
    from advbench.models.card import load_model
    from advbench.models.hah import HaHBlock
    from advbench.train import TrainConfig, train_model

    config = TrainConfig("hah-vgg16", dataset="digits", epochs=1, batch_size=64, lr=0.01, crop_pad=0, flip=False,
                         model_kwargs={"width": 8, "strides": [1, 1, 2, 2, 2]})
    card = train_model(config, tmp_path / "digits", torch.device("cpu"))
    assert card.training["recipe"] == "hah"
    model, _ = load_model("hah-vgg16", "digits", tmp_path)
    assert sum(isinstance(m, HaHBlock) for m in model.modules()) == 6
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_cpni_covariance_is_d_plus_lt_l() -> None:
    from advbench.models.pni import ColoredNoise

    torch.manual_seed(0)
    noise = ColoredNoise(n=6, rank=2)
    with torch.no_grad():
        noise.log_d.copy_(torch.linspace(-1, 0.5, 6))
        noise.low_rank.mul_(5)
    expected = (torch.diag(noise.log_d.exp()) + noise.low_rank.t() @ noise.low_rank).detach()
    torch.testing.assert_close(noise.covariance().detach(), expected)
    with torch.no_grad():
        draws = noise.sample(200_000, torch.Generator().manual_seed(1))
    empirical = draws.t() @ draws / len(draws)
    torch.testing.assert_close(empirical, expected, atol=0.05 * float(expected.abs().max()), rtol=0)


@pytest.mark.parametrize("name", ["pni-w", "cpni-w", "cpni-a", "cpni-w-smooth-prediction", "cpni-w-smooth-soft", "cpni-w-smooth-weighted"])
def test_noise_injection_models_are_stochastic(name: str) -> None:
    from advbench.models import MODELS
    from advbench.models.wrapper import RobustModel

    net = MODELS.get(name).build(in_channels=1, num_classes=10, width=4)
    model = RobustModel(net, (1, 16, 16), 10)
    x = torch.rand(3, 1, 16, 16)
    assert model.stochastic
    if name.endswith(("prediction", "weighted")):
        return  # an untrained model's vote is often unanimous, hence repeatable; its trait still holds
    assert not torch.equal(model(x), model(x))


def test_top_t_keeps_exactly_t_per_patch_and_routes_gradients_through_top_u() -> None:
    from advbench.models.sparse_coding import TopT

    torch.manual_seed(0)
    layer = TopT(top_t=3, top_u=6)
    x = torch.randn(2, 20, 4, 4, requires_grad=True)
    out = layer(x)
    assert bool(((out != 0).sum(1) == 3).all())
    magnitude = x.detach().abs()
    smallest_kept = magnitude.where(out != 0, torch.full_like(magnitude, float("inf"))).amin(dim=1)
    largest_dropped = magnitude.where(out == 0, torch.zeros_like(magnitude)).amax(dim=1)
    assert bool((smallest_kept >= largest_dropped).all())
    layer.use_surrogate = True
    (grad,) = torch.autograd.grad(layer(x).sum(), x)
    assert bool(((grad != 0).sum(1) == 6).all())


def test_dead_zone_quantizer_levels_and_threshold() -> None:
    from advbench.models.sparse_coding import DeadZoneQuantizer

    l1 = torch.tensor([2.0, 4.0])
    q = DeadZoneQuantizer(l1, beta=3.0, eps=0.1)  # thresholds 0.6 and 1.2
    x = torch.tensor([[0.59, 1.19], [-0.61, -1.3]]).view(2, 2, 1, 1)
    torch.testing.assert_close(q(x).view(2, 2), torch.tensor([[0.0, 0.0], [-2.0, -4.0]]))


def test_dictionary_learning_runs_every_iteration(monkeypatch) -> None:
    # Dissertation §4.2.4 / App. B.3: 1000 iterations "to ensure convergence"; scikit-learn's own
    # stopping rule would end after about two passes, so every step must be taken.
    from sklearn.decomposition import MiniBatchDictionaryLearning

    from advbench.models.sparse_coding import learn_dictionary

    sizes = []
    original = MiniBatchDictionaryLearning.partial_fit
    monkeypatch.setattr(MiniBatchDictionaryLearning, "partial_fit", lambda self, X, y=None: sizes.append(len(X)) or original(self, X))
    images = torch.rand(20, 1, 28, 28)  # 20 x 169 patches: a pass is 13 batches of 256
    learn_dictionary(images, atoms=8, patch=4, stride=2, iterations=30, batch_size=256)
    assert sizes == [256] * 30
    import inspect

    assert inspect.signature(learn_dictionary).parameters["iterations"].default == 1000


def test_sparse_coding_front_end_shapes_and_randomness() -> None:
    from advbench.models.sparse_coding import SparseCodingFrontEnd, learn_dictionary

    images = torch.rand(50, 1, 28, 28)
    dictionary = learn_dictionary(images, atoms=24, patch=4, stride=2, max_patches=2000, iterations=50)
    assert dictionary.shape == (24, 1, 4, 4)
    torch.testing.assert_close(dictionary.flatten(1).norm(dim=1), torch.ones(24))
    net = SparseCodingFrontEnd(in_channels=1, input_size=28, atoms=24, top_t=5, dropout=0.5, eps=0.1, ensemble=3, classifier_width=4).eval()
    net.set_dictionary(dictionary)
    x = torch.rand(2, 1, 28, 28)
    assert net.decoder(net.encode(x)).shape == (2, 1, 28, 28)
    assert net.is_stochastic and net(x).shape == (2, 10)
    plain = SparseCodingFrontEnd(in_channels=1, input_size=28, atoms=24, top_t=5, dropout=0.0, eps=0.1, classifier_width=4).eval()
    assert not plain.is_stochastic and torch.equal(plain(x), plain(x))


def test_pgd_adversarial_training_buys_robustness(tmp_path) -> None:
    from advbench.attacks import build_attack
    from advbench.core.threat import Norm, ThreatModel
    from advbench.data import load_dataset
    from advbench.models.card import load_model
    from advbench.train import TrainConfig, train_model

    # The same small CNN on digits, trained normally and with PGD adversarial training.
    common = dict(dataset="digits", epochs=8, batch_size=64, lr=0.02, crop_pad=0, flip=False, model_kwargs={"input_size": 8})
    train_model(TrainConfig("madry-cnn", **common), tmp_path / "digits", torch.device("cpu"))
    card = train_model(TrainConfig("madry-cnn-at", at_eps=0.15, at_steps=5, **common), tmp_path / "digits", torch.device("cpu"))
    assert card.training["recipe"] == "pgd-at" and card.training["at_eps"] == 0.15
    data = load_dataset("digits", "test")
    robust = {}
    for name in ("madry-cnn", "madry-cnn-at"):
        model, _ = load_model(name, "digits", tmp_path)
        result = build_attack("pgd")[1](model, data.images, data.labels, ThreatModel(Norm.LINF, 0.15))
        robust[name] = 1 - result.success.float().mean().item()
    assert robust["madry-cnn-at"] > robust["madry-cnn"] + 0.2, robust
