"""Defining properties of the papers' building blocks, on hand-checkable cases."""

import math

import pytest
import torch

from advbench.models.kernel_pooling import KernelPool
from advbench.train.smooth_kernels import model_smoothness, neighbour_penalty, smooth_kernel_regularizer


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
    assert neighbour_penalty(rough).item() == pytest.approx(6 * neighbour_penalty(rough[:1, :1]).item())
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
