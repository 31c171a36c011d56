"""The analyses against their definitions on hand-checkable cases, plus one run end to end."""

from __future__ import annotations

import itertools
import json
import math
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advbench.analysis.common import db, select_layers
from advbench.analysis.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from advbench.analysis.cost import model_cost
from advbench.analysis.deceptive import most_deceptive
from advbench.analysis.features import features_analysis
from advbench.analysis.invariance import unchanged_share
from advbench.analysis.kernels import conv_singular_values, filter_sparsity
from advbench.analysis.noise import activation_noise, noisy_accuracy
from advbench.analysis.psr import layer_psr
from advbench.analysis.snr import block_snr
from advbench.analysis.sparsity import activation_hoyer, hoyer
from advbench.core.errors import UsageError


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * x


# ----------------------------------------------------------------------------- PSR, SNR, Hoyer

def test_psr_of_identity_and_scaling_layers_equals_the_inputs():
    net = nn.Sequential(nn.Identity(), Scale(3.0))
    x = torch.ones(2, 1, 2, 2)
    x_pert = x.clone()
    x_pert[:, 0, 0, 0] += 0.5  # one element of four moves by 0.5
    stats = layer_psr(net, x, x_pert, layers="0,1")
    for name in ("input", "0", "1"):
        assert torch.allclose(stats[name]["l1"], torch.full((2,), 0.5 / 4))
        assert torch.allclose(stats[name]["l2"], torch.full((2,), 0.5 / 2))
        assert torch.allclose(stats[name]["linf"], torch.full((2,), 0.5 / 1))
    assert db(0.1) == pytest.approx(-20.0) and db(100.0, power=True) == pytest.approx(20.0)


def test_psr_of_an_unchanged_zero_signal_is_zero_not_nan():
    stats = layer_psr(nn.Sequential(nn.Identity()), torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), layers="0")
    assert float(stats["0"]["l2"]) == 0.0


def test_snr_known_case_and_zero_noise_is_infinite():
    net = nn.Sequential(nn.Identity(), nn.Identity())
    x = torch.ones(3, 1, 2, 2)  # signal power 4 per sample
    snr = block_snr(net, x, x + 0.1, layers="1")  # noise power 4 * 0.01
    assert snr["input"] == pytest.approx(20.0, abs=1e-4) and snr["1"] == pytest.approx(20.0, abs=1e-4)
    assert block_snr(net, x, x.clone(), layers="1")["1"] == math.inf


def test_hoyer_is_zero_for_one_hot_one_for_constant():
    assert float(hoyer(torch.tensor([0.0, 0.0, 5.0, 0.0]))) == pytest.approx(0.0)
    assert float(hoyer(torch.full((7,), -2.0))) == pytest.approx(1.0)
    assert float(hoyer(torch.tensor([1.0, 1.0, 0.0, 0.0]))) == pytest.approx((4 / 2 - 1) / 3)
    assert math.isnan(float(hoyer(torch.zeros(4))))
    act = torch.zeros(1, 4, 1, 2)
    act[0, 1, 0, 0] = 1.0  # location 0: one-hot
    act[0, :, 0, 1] = 2.0  # location 1: constant
    assert float(activation_hoyer(act)) == pytest.approx(0.5)


def test_filter_sparsity_ratio():
    w = torch.zeros(2, 1, 3, 3)
    w[0, 0, 1, 1] = 4.0
    w[1] = 0.3
    assert filter_sparsity(w).tolist() == pytest.approx([0.0, 1.0])


# ----------------------------------------------------------------------------- kernels, cost

@pytest.mark.parametrize("cin,cout,k,stride,pad,size", [(2, 3, 3, 1, 1, 6), (2, 3, 3, 2, 1, 6), (1, 4, 3, 2, 1, 8), (3, 2, 1, 2, 0, 4)])
def test_conv_singular_values_match_the_explicit_circular_operator(cin, cout, k, stride, pad, size):
    w = torch.randn(cout, cin, k, k, generator=torch.Generator().manual_seed(0))
    basis = torch.eye(cin * size * size).view(-1, cin, size, size)
    matrix = F.conv2d(F.pad(basis, (pad, k - 1 - pad, pad, k - 1 - pad), mode="circular"), w, stride=stride).flatten(1)
    expected = torch.linalg.svdvals(matrix).sort(descending=True).values
    got = conv_singular_values(w, (size, size), stride, pad)
    assert torch.allclose(got[: len(expected)], expected, atol=1e-4)


def test_receptive_field_flops_and_params_of_a_known_stack():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, 1, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 1), nn.MaxPool2d(2), nn.Conv2d(4, 2, 3, 1, 1))
    cost = model_cost(net, (1, 16, 16))
    # r: 3; 3 + 2 = 5 (jump 2); pool 5 + 1*2 = 7 (jump 4); 7 + 2*4 = 15
    assert [(name, r, j) for name, r, j in cost.layers] == [("0", 3, 1), ("2", 5, 2), ("4", 15, 4)]
    assert cost.macs == 4 * 16 * 16 * 9 + 4 * 8 * 8 * 36 + 2 * 4 * 4 * 36
    assert cost.params == (9 + 1) * 4 + (36 + 1) * 4 + (36 + 1) * 2


def test_receptive_field_of_a_residual_join_is_the_larger_branch():
    class Res(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.skip = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 1)
            self.after = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.after(self.b(self.a(x)) + self.skip(x))

    rf = {name: r for name, r, _ in model_cost(Res(), (1, 8, 8)).layers}
    assert rf == {"a": 3, "b": 5, "skip": 1, "after": 7}


# ----------------------------------------------------------------------------- corruptions

def _rgb_batch(digits: torch.Tensor) -> torch.Tensor:
    x = F.interpolate(digits[:16], size=(32, 32), mode="bilinear", align_corners=False)
    return (x * torch.tensor([0.9, 0.6, 0.3]).view(1, 3, 1, 1) + 0.05).clamp(0, 1)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_keeps_shape_and_range_and_is_monotone_in_severity(name, digits_data):
    for x in (digits_data[0][:64], _rgb_batch(digits_data[0])):
        distances = []
        for s in SEVERITIES:
            out = corrupt(x, name, s, seed=3)
            assert out.shape == x.shape and out.dtype == x.dtype
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
            distances.append(float((out - x).flatten(1).norm(dim=1).mean()))
        assert distances[0] > 0, f"{name} severity 1 leaves the images unchanged"
        assert all(b >= a - 1e-6 for a, b in itertools.pairwise(distances)), f"{name}: {distances}"
    assert torch.equal(corrupt(x, name, 3, seed=1), corrupt(x, name, 3, seed=1))


def test_corrupt_rejects_bad_input():
    with pytest.raises(UsageError):
        corrupt(torch.rand(1, 1, 8, 8), "gaussian_noise", 6)
    with pytest.raises(UsageError, match="unknown corruption"):
        corrupt(torch.rand(1, 1, 8, 8), "rain", 1)


# ----------------------------------------------------------------------------- invariance, noise, features, deceptive

def test_unchanged_share_counts_right_and_wrong_alike():
    assert unchanged_share(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 0, 0])) == 0.5


def test_zero_noise_gives_clean_accuracy_and_hooks_are_removed(digits_model, digits_data):
    x, y = digits_data[0][:64], digits_data[1][:64]
    clean = float((digits_model.predict(x) == y).float().mean())
    for place in ("input", "activations", "both"):
        assert noisy_accuracy(digits_model, x, y, 0.0, place) == pytest.approx(clean)
    with activation_noise(digits_model.net, 1.0, torch.Generator().manual_seed(0)):
        noisy = digits_model(x)
    assert not torch.allclose(noisy, digits_model(x))
    assert torch.equal(digits_model(x), digits_model(x))  # no hook left behind
    assert noisy_accuracy(digits_model, x, y, 0.5, "input") < clean


def test_proposition_1_average_pooling_disturbance_shrinks_with_feature_size():
    result = features_analysis(sizes=(8, 32), inits=("xavier_normal",), perturbations=40)
    rows = {(r[1], r[2], r[3]): r[4] for r in result.rows}
    assert rows[("none", "avg", 32)] < rows[("none", "avg", 8)]
    assert rows[("none", "max", 32)] > rows[("none", "avg", 32)]


def test_most_deceptive_picks_the_most_confident_success_per_class():
    confidence = torch.tensor([0.9, 0.6, 0.99, 0.7, 0.8])
    success = torch.tensor([True, True, False, True, False])
    y = torch.tensor([0, 0, 0, 1, 2])
    assert most_deceptive(confidence, success, y, 4).tolist() == [0, 3, -1, -1]


def test_select_layers_kinds(digits_model):
    net = digits_model.net
    assert all(isinstance(m, (nn.Conv2d, nn.Linear)) for _, m in select_layers(net, "conv"))
    blocks = [n for n, _ in select_layers(net, "block")]
    assert blocks[0] == "stages.0.0" and blocks[-1] == "fc"
    with pytest.raises(UsageError):
        select_layers(net, "nothing.matches*")


# ----------------------------------------------------------------------------- end to end

def test_run_analysis_writes_csv_png_and_json_record(digits_zoo, tmp_path):
    from advbench.analysis.runner import AnalysisRun, run_analysis

    run = AnalysisRun(model="rn18-nt", dataset="digits", n=40, zoo=str(digits_zoo), out=str(tmp_path), device="cpu")
    result, paths = run_analysis("psr", run, attack="pgd:steps=5", eps=0.1)
    assert set(paths) == {"csv", "png", "json"} and all(p.is_file() for p in paths.values())
    assert paths["csv"].name.startswith("rn18-nt_digits_")
    record = json.loads(paths["json"].read_text())
    assert record["analysis"] == "psr" and record["n"] == 40 and len(record["checkpoint_sha256"]) == 64
    # Provenance like a stored run's: the commit of this checkout and the library versions.
    from advbench.core.provenance import git_commit

    assert record["git_commit"] == git_commit() and "torch" in record["libraries"]
    assert record["rows"][0][0] == "input" and 0.05 < record["rows"][0][4] <= 0.1 + 1e-6  # Linf PSR of the input: |delta|_inf <= eps, max pixel 1
    assert result.rows[-1][0] == "fc"


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from advbench.cli.app import main

    monkeypatch.setattr(sys, "argv", ["advbench", *args])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_analyze_and_models_cost(digits_zoo, tmp_path, monkeypatch, capsys):
    code, out, _ = _cli(monkeypatch, capsys, "analyze", "sparsity", "-m", "rn18-nt", "--dataset", "digits", "--n", "20",
                        "--zoo", str(digits_zoo), "--out", str(tmp_path), "--device", "cpu")
    assert code == 0 and "stages.0.0" in out and len(list(tmp_path.glob("*.json"))) == 1
    code, _, err = _cli(monkeypatch, capsys, "analyze", "psr", "-m", "rn18-nt", "--dataset", "digits", "--norm", "l7", "--zoo", str(digits_zoo))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "unknown norm" in err
    code, out, _ = _cli(monkeypatch, capsys, "models", "cnn1", "--cost")
    assert code == 0 and "cnn1" in out and "3x32x32" in out


def test_polarization_counts_the_outputs_an_eps_attack_can_flip() -> None:
    """Pixel-basis filters make z the pixel itself: images at 0.35 sit within 0.1 of the 0.3
    threshold (all flippable), images at 0.95 sit in the +1 cluster (none flippable)."""
    from advbench.analysis.polarization import polarization_analysis
    from advbench.models.polarize import PolarizingFrontEnd

    pfe = PolarizingFrontEnd(filters=4, kernel=5, threshold=0.3).eval()
    with torch.no_grad():
        pfe.front.weight.zero_()
        pfe.front.weight[:, 0, 2, 2] = torch.tensor([1.0, 2.0, 3.0, 0.5])  # the L1 normalization makes each exactly the pixel
        pfe.front.weight[3, 0, 0, 0] = 0.5  # one filter uses 2 pixels, half its mass each
    y = torch.zeros(6, dtype=torch.long)
    near = polarization_analysis(pfe, torch.full((6, 1, 28, 28), 0.35), y, eps=0.1)
    far = polarization_analysis(pfe, torch.full((6, 1, 28, 28), 0.95), y, eps=0.1)
    assert near.summary["share_flippable_at_eps"] > 0.7 and far.summary["share_flippable_at_eps"] < 0.1
    assert far.summary["share_near_plus_1"] > 0.7 and near.summary["share_near_plus_1"] == 0.0
    assert sum(near.column("count")) == 6 * 4 * 28 * 28
    assert near.summary["pixels_for_90pct_l1_mean"] == (1 + 1 + 1 + 2) / 4


def test_polarization_refuses_a_model_without_a_front_end() -> None:
    from advbench.analysis.polarization import polarization_analysis
    from advbench.core.errors import UsageError

    with pytest.raises(UsageError, match="no polarizing front end"):
        polarization_analysis(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)), torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long))
