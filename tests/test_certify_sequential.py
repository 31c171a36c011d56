"""Sequential certification: anytime-valid coverage on a linear classifier with a known exact radius,
per-image allocation, agreement with fixed-N CERTIFY, the run key, `show`, precision, external models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_certify import linear_model
from typer.testing import CliRunner

from advbench.certification.cohen import CertifyConfig, certify_sample
from advbench.certification.sequential import (
    SequentialConfig,
    certify_sequential,
    clopper_pearson,
)
from advbench.core.errors import UsageError

SIGMA = 0.25


def exact_linear(margin: float, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    """A linear two-class model and an image whose smoothed classifier's exact radius is `margin` (class 1)."""
    gen = torch.Generator().manual_seed(seed)
    w, x = torch.randn(1, 4, 4, generator=gen), torch.rand(1, 4, 4, generator=gen)
    return linear_model(w, margin * float(w.norm()) - float((w * x).sum())), x


def failure_rate(model: torch.nn.Module, x: torch.Tensor, exact: float, config: SequentialConfig, images: int) -> float:
    """Share of independent runs (each image index draws its own noise) certifying beyond the exact
    radius, or certifying the wrong class."""
    batch = x.unsqueeze(0).expand(images, -1, -1, -1).contiguous()
    results = certify_sequential(model, batch, [1] * images, list(range(images)), config)
    return sum((c.prediction == 1 and c.radius > exact) or c.prediction == 0 for c, _ in results) / images


def test_sequential_bounds_keep_their_coverage_over_all_looks() -> None:
    """Deciding a radius equal to the exact radius is the stopping rule's worst case: every look is
    a chance to stop on a lucky lower bound. With the union bound over the looks the failure rate
    stays below alpha; the same schedule with alpha at every look (peeking) exceeds it several times,
    so this test can tell the two apart."""
    exact, alpha = 0.3, 0.05
    model, x = exact_linear(exact)
    config = SequentialConfig(sigma=SIGMA, n0=20, max_draws=20_000, alpha=alpha, radii=(exact,), batch_size=20_000)
    valid = failure_rate(model, x, exact, config, 1000)
    peeking = SequentialConfig(sigma=SIGMA, n0=20, max_draws=20_000, alpha=alpha * len(config.looks), radii=(exact,), batch_size=20_000)
    naive = failure_rate(model, x, exact, peeking, 1000)
    print(f"failure rate over 1000 seeds: {valid:.3f} with the union bound, {naive:.3f} when peeking (alpha {alpha})")
    assert valid <= alpha
    assert naive > 2 * alpha
    # The whole curve (no radius): the reported radius is below the exact one as often.
    curve = SequentialConfig(sigma=SIGMA, n0=20, max_draws=20_000, alpha=alpha, resolution=0.02, batch_size=20_000)
    assert failure_rate(model, x, exact, curve, 500) <= alpha


def test_draws_go_where_they_change_the_answer() -> None:
    """pA near 1 (far from the boundary) and an exact radius midway between two asked radii stop
    after a few looks; an image whose exact radius sits next to an asked radius runs long, but
    stops once its radius is known to the resolution."""
    radii = (0.0, 0.25, 0.5)
    config = SequentialConfig(sigma=SIGMA, n0=50, max_draws=200_000, alpha=0.001, radii=radii, resolution=0.01, batch_size=50_000)
    draws = {}
    for margin in (2.0, 0.125, 0.255):
        model, x = exact_linear(margin, seed=3)
        (cert, passes), = certify_sequential(model, x.unsqueeze(0), [1], [0], config)
        draws[margin] = passes
        assert cert.prediction == 1 and cert.radius <= margin + 1e-9
    assert draws[2.0] <= 5_000 and draws[0.125] <= 1_000
    assert 200_050 > draws[0.255] >= 10 * max(draws[2.0], draws[0.125])


def test_sequential_matches_fixed_n_at_every_asked_radius_with_fewer_draws() -> None:
    radii = (0.0, 0.1, 0.2, 0.3, 0.4)
    config = SequentialConfig(sigma=SIGMA, n0=50, max_draws=20_000, alpha=0.001, radii=radii, batch_size=20_000)
    fixed_config = CertifyConfig(sigma=SIGMA, n0=50, n=20_000, alpha=0.001, batch_size=20_000)
    fixed_hits, seq_hits = np.zeros(len(radii)), np.zeros(len(radii))
    seq_passes = 0
    for i in range(12):
        margin = 0.03 + 0.07 * i  # from near the boundary to beyond the largest radius, some next to an asked one
        model, x = exact_linear(margin, seed=i)
        fixed = certify_sample(model, x, 1, i, fixed_config)
        (seq, passes), = certify_sequential(model, x.unsqueeze(0), [1], [i], config)
        seq_passes += passes
        fixed_hits += [fixed.prediction == 1 and fixed.radius >= r for r in radii]
        seq_hits += [seq.prediction == 1 and seq.radius >= r for r in radii]
        assert seq.radius <= margin + 1e-9
    assert np.abs(fixed_hits - seq_hits).max() <= 1
    print(f"sequential: {seq_passes} forward passes, fixed N: {12 * 20_050}")
    assert 12 * 20_050 >= 3 * seq_passes


def test_a_radius_just_out_of_max_draws_reach_stops_long_before_the_cap() -> None:
    """Exact radius 0.245 next to the asked 0.25: pA's upper bound stays above Phi(0.25 / sigma)
    until about 85,000 draws, but CERTIFY with all 200,000 draws would not certify 0.25 either
    (its bound costs about 0.008 in radius), so the image stops once even its upper bound on pA
    could not get there, well before the cap, with the answer fixed N gives. Where it stops depends
    on its noise, so the same image is certified under 6 noise streams (6 dataset indices): most
    stop by the look at 51,200 draws, none runs to the cap."""
    config = SequentialConfig(sigma=SIGMA, n0=50, max_draws=200_000, alpha=0.001, radii=(0.0, 0.25), resolution=0.001, batch_size=50_000)
    fixed_config = CertifyConfig(sigma=SIGMA, n0=50, n=200_000, alpha=config.alpha_per_look, batch_size=50_000)
    model, x = exact_linear(0.245, seed=5)
    streams = 6
    results = certify_sequential(model, x.unsqueeze(0).expand(streams, -1, -1, -1), [1] * streams, list(range(streams)), config)
    fixed = certify_sample(model, x, 1, 0, fixed_config)
    passes = sorted(p for _, p in results)
    print(f"sequential passes {passes}, radii {[round(c.radius, 4) for c, _ in results]}; fixed N 200,000 radius {fixed.radius:.4f}")
    assert fixed.prediction == 1 and fixed.radius < 0.25
    assert all(cert.prediction == 1 and cert.radius < 0.25 for cert, _ in results)
    assert passes[streams // 2] <= 50 + 60_000 and passes[-1] < 50 + 200_000


def test_a_radius_no_draw_count_can_certify_is_decided_not_a_crash() -> None:
    """Phi(r / sigma) rounds to 1 (r = 1 at sigma 0.1): no look is planned for it, and images
    stop as soon as their other radii are settled, never certified there."""
    config = SequentialConfig(sigma=0.1, n0=50, max_draws=20_000, radii=(0.0, 0.1, 1.0), batch_size=20_000)
    assert config.looks and max(config.looks) <= 20_000
    model, x = exact_linear(0.3)
    (cert, passes), = certify_sequential(model, x.unsqueeze(0), [1], [0], config)
    assert cert.prediction == 1 and 0.1 <= cert.radius < 1.0 and passes < 50 + 20_000


def test_results_do_not_depend_on_the_other_images_in_the_batch(digits_model, digits_data) -> None:
    x, y = digits_data
    config = SequentialConfig(sigma=SIGMA, n0=20, max_draws=800, radii=(0.0, 0.25), batch_size=300)
    together = certify_sequential(digits_model, x[:6], y[:6].tolist(), list(range(6)), config)
    alone = certify_sequential(digits_model, x[4:5], [int(y[4])], [4], config)
    assert together[4] == alone[0]


def test_clopper_pearson_arrays_match_the_scalar_bound() -> None:
    from advbench.certification.cohen import lower_confidence_bound

    lower, upper = clopper_pearson(np.array([0, 7, 10]), np.array([10, 10, 10]), 0.01)
    assert lower[0] == 0 and upper[2] == 1
    assert lower[1] == pytest.approx(lower_confidence_bound(7, 10, 0.01))
    assert upper[1] == pytest.approx(1 - lower_confidence_bound(3, 10, 0.01))


def test_bad_sequential_settings_are_usage_errors() -> None:
    from advbench.engine.spec import CertifySpec

    with pytest.raises(UsageError, match="--resolution"):
        SequentialConfig(resolution=0)
    with pytest.raises(UsageError, match="--precision"):
        SequentialConfig(precision="fp8")
    with pytest.raises(UsageError, match="--adaptive and --sequential"):
        CertifySpec("m", sequential=True, adaptive_radius=0.5)
    with pytest.raises(UsageError, match="--radius lists radii"):
        CertifySpec("m", radii=(0.5,))
    with pytest.raises(UsageError, match="--radius must be finite"):
        CertifySpec("m", sequential=True, radii=(-1.0,))


def test_sequential_run_stores_draws_per_image_keys_and_show(digits_zoo, tmp_path) -> None:
    from advbench.cli.app import app
    from advbench.engine.certify import resolve_certify, run_certify
    from advbench.engine.runs import config_key
    from advbench.engine.spec import CertifySpec, Runtime
    from advbench.store import Store

    db = tmp_path / "s.sqlite"
    runtime = Runtime(db=db, zoo=digits_zoo, batch_size=500, device="cpu")
    spec = CertifySpec("rn18-nt", sigmas=(0.25,), n0=20, noise_draws=3_000, n=6, dataset="digits", sequential=True, radii=(0.0, 0.25))
    summary = run_certify(spec, runtime)
    with Store(db) as store:
        rows = store.certificate_rows(summary.run_id)
    assert len(rows) == 6 and all(r["forward_passes"] == 20 + r["n"] for r in rows)
    spread = summary.curves["0.25"]["passes_per_image"]
    assert spread["max"] <= 3_020 and spread["min"] < spread["max"]  # images got different budgets
    assert run_certify(spec, runtime).run_id == summary.run_id  # found again, not re-run
    # Key: the default options keep the old key; sequential and precision add fields.
    fixed = CertifySpec("rn18-nt", sigmas=(0.25,), n0=20, noise_draws=3_000, n=6, dataset="digits")
    fixed_payload = resolve_certify(fixed, runtime).payload()
    assert "sequential" not in fixed_payload and "precision" not in fixed_payload
    assert config_key(resolve_certify(spec, runtime).payload()) != config_key(fixed_payload)
    result = CliRunner().invoke(app, ["show", summary.run_id, "--db", str(db)])
    assert result.exit_code == 0 and "passes" in result.output, result.output
    shown = CliRunner().invoke(app, ["show", summary.run_id, "--db", str(db), "--json"])
    assert json.loads(shown.output)["summary"]["curves"]["0.25"]["passes_per_image"] == spread


def test_cli_sequential_bad_inputs_exit_2(digits_zoo, tmp_path) -> None:
    """One clear line on stderr and exit status 2, through the real entry point."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    base = ["certify", "--model", "rn18-nt", "--dataset", "digits", "--zoo", str(digits_zoo), "--db", str(tmp_path / "b.sqlite"), "--n", "2"]
    cases = [
        (["--adaptive", "--radius", "0.1", "--radius", "0.2"], "--adaptive decides one --radius"),
        (["--sequential", "--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
        (["--sequential", "--resolution", "-1"], "--resolution must be a positive number"),
    ]
    for extra, message in cases:
        env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-m", "advbench", *base, *extra], check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        lines = [line for line in proc.stderr.splitlines() if line.strip() and "certify" not in line[:8]]
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr


def test_external_model_certifies_with_its_weights_hash(tmp_path) -> None:
    """`--model file:PATH.py:NAME --weights W` certifies like a zoo model, its run keyed by the same
    hash as `eval` (weights and source file); editing the source is a new run."""
    from advbench.cli.app import app
    from advbench.models.card import load_model
    from advbench.store import Store

    (tmp_path / "tiny.py").write_text(
        "import torch\n\nclass Tiny(torch.nn.Sequential):\n"
        "    def __init__(self):\n        super().__init__(torch.nn.Flatten(), torch.nn.Linear(64, 10))\n"
    )
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).state_dict(), weights)
    db = tmp_path / "e.sqlite"
    args = ["certify", "--model", f"file:{tmp_path / 'tiny.py'}:Tiny", "--weights", str(weights), "--dataset", "digits",
            "--n", "3", "--noise-draws", "200", "--n0", "10", "--sequential", "--radius", "0.1", "--db", str(db), "--device", "cpu", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        run = store.list_runs(5)[0]
        assert len(store.certificate_rows(run.run_id)) == 3
        record = store.get_run(run.run_id)
    spec = f"file:{tmp_path / 'tiny.py'}:Tiny"
    assert record.config["checkpoint_sha256"] == load_model(spec, "digits", weights=weights)[1].sha256
    (tmp_path / "tiny.py").write_text((tmp_path / "tiny.py").read_text() + "# edited\n")
    assert CliRunner().invoke(app, args).exit_code == 0
    with Store(db) as store:
        assert len(store.list_runs(5)) == 2


@pytest.mark.parametrize("name", ["rn18-nt-noise", "kap-rn18"])
def test_bf16_predictions_agree_with_fp32_on_noisy_draws(name: str) -> None:
    """Shipped noise-trained models: bf16 autocast (CPU) keeps >= 99 % of the noisy draws' predictions."""
    from advbench.certification.forward import precision_context
    from advbench.data import load_dataset

    if not torch.backends.mkldnn.is_available():
        pytest.fail("bf16 autocast on the CPU needs oneDNN (torch.backends.mkldnn)")
    from advbench.models.card import load_model

    model, _ = load_model(name, "fashion-mnist")
    x = load_dataset("fashion-mnist", "test", indices=torch.arange(3)).images
    gen = torch.Generator().manual_seed(0)
    noisy = (x.repeat_interleave(100, 0) + 0.25 * torch.randn((300, *x.shape[1:]), generator=gen))
    with torch.no_grad():
        full = model(noisy).argmax(1)
        with precision_context(torch.device("cpu"), "bf16"):
            low = model(noisy).argmax(1)
    agree = (full == low).float().mean().item()
    print(f"{name}: bf16 agrees with fp32 on {agree:.4f} of 300 noisy draws")
    assert agree >= 0.99


def test_suite_certify_section_takes_the_sequential_settings() -> None:
    from advbench.engine.suite import suite_cells
    from advbench.engine.suite_schema import Suite

    base = {"models": ["rn18-nt"], "threats": [{"norm": "linf", "eps": 0.1}]}
    suite = Suite.from_mapping({**base, "certify": {"sigmas": [0.25], "sequential": True, "radii": [0.5, 0], "resolution": 0.02}})
    (_, _, _, spec), = [c for c in suite_cells(suite) if c[0] == "certify"]
    assert spec.sequential and spec.radii == (0.0, 0.5) and spec.resolution == 0.02 and spec.precision == "fp32"
    with pytest.raises(UsageError, match="resolution"):
        Suite.from_mapping({**base, "certify": {"sequential": True, "resolution": 0}})
