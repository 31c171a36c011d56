"""Cohen et al. certification: closed-form check on a linear classifier, reproducibility, storage."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm

from advbench.certification.cohen import (
    ABSTAIN,
    CertifyConfig,
    certify_sample,
    lower_confidence_bound,
)
from advbench.models.wrapper import RobustModel


def linear_model(w: torch.Tensor, b: float) -> RobustModel:
    """Two classes: class 1 where w.x + b > 0."""
    layer = torch.nn.Linear(w.numel(), 2)
    with torch.no_grad():
        layer.weight.copy_(torch.stack([-w.flatten(), w.flatten()]) / 2)
        layer.bias.copy_(torch.tensor([-b / 2, b / 2]))
    return RobustModel(torch.nn.Sequential(torch.nn.Flatten(), layer), (1, 4, 4), 2)


def test_certified_radius_approaches_the_exact_linear_radius_from_below() -> None:
    torch.manual_seed(0)
    w = torch.randn(1, 4, 4)
    x = torch.rand(1, 4, 4)
    b = 0.3 - float((w * x).sum())  # margin 0.3 on the positive side
    model = linear_model(w, b)
    exact = 0.3 / float(w.norm())  # distance to the hyperplane = the smoothed classifier's exact radius
    sigma = 0.25
    radii = []
    for n in (100, 1000, 10_000, 100_000):
        cert = certify_sample(model, x, 1, 0, CertifyConfig(sigma=sigma, n0=50, n=n, alpha=0.001, batch_size=10_000))
        radii.append(cert.radius)
        assert cert.radius <= exact + 1e-9
        assert cert.prediction in (1, ABSTAIN)
    assert radii == sorted(radii) and radii[-1] > 0.9 * exact
    # The exact pA of the smoothed linear classifier is Phi(margin / (sigma ||w||)); sigma Phi^-1(pA) = exact.
    assert sigma * norm.ppf(norm.cdf(exact / sigma)) == pytest.approx(exact)


def test_clopper_pearson_bound_agrees_with_brute_force() -> None:
    from scipy.stats import binom

    # The one-sided lower bound is the p at which P(X >= k; n, p) = alpha.
    for k, n in ((7, 10), (90, 100), (10, 10)):
        p = lower_confidence_bound(k, n, 0.01)
        assert binom.sf(k - 1, n, p) == pytest.approx(0.01, rel=1e-6)


def test_certification_is_reproducible_and_sample_seeded(digits_model, digits_data) -> None:
    x, y = digits_data
    config = CertifyConfig(sigma=0.25, n0=20, n=300, batch_size=128)
    a = certify_sample(digits_model, x[3], int(y[3]), 3, config, seed=1)
    b = certify_sample(digits_model, x[3], int(y[3]), 3, config, seed=1)
    assert a == b
    # The noise stream is keyed by the sample's dataset index: another index draws other noise
    # (counts alone could coincide by chance, so compare the draws themselves).
    from advbench.certification.noise import image_key, noise

    def draw(index: int, sigma: float = 0.25, copy: int = 0) -> torch.Tensor:
        return noise(torch.tensor([image_key(1, index, sigma)]), torch.tensor([copy]), (50,))

    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))
    assert not torch.equal(draw(3), draw(3, sigma=0.5)) and not torch.equal(draw(3), draw(3, copy=1))


def test_certify_run_stores_every_certificate_and_resumes(digits_zoo, tmp_path) -> None:
    from advbench.engine.certify import run_certify
    from advbench.engine.spec import CertifySpec, Runtime
    from advbench.store import Store

    db = tmp_path / "c.sqlite"
    config = CertifySpec("rn18-nt", sigmas=(0.12, 0.25), n0=10, noise_draws=100, n=6, dataset="digits")
    runtime = Runtime(db=db, zoo=digits_zoo, batch_size=100, device="cpu")
    summary = run_certify(config, runtime)
    with Store(db) as store:
        rows = store.certificate_rows(summary.run_id)
    assert len(rows) == 12 and {r["sigma"] for r in rows} == {0.12, 0.25}
    curve = summary.curves["0.25"]["certified_accuracy"]
    assert curve == sorted(curve, reverse=True) and 0 <= curve[0] <= 1
    again = run_certify(config, runtime)
    assert again.run_id == summary.run_id and again.curves == summary.curves
    assert not math.isnan(summary.forward_passes_per_second)


def test_adaptive_certification_matches_fixed_n_at_its_radius_with_fewer_draws() -> None:
    from advbench.certification.cohen import certify_sample_adaptive

    torch.manual_seed(1)
    sigma, target = 0.25, 0.2
    fixed_hits = adaptive_hits = 0
    fixed_passes = adaptive_passes = 0
    for i in range(12):
        w = torch.randn(1, 4, 4)
        x = torch.rand(1, 4, 4)
        margin = 0.05 + 0.1 * i  # from points near the boundary to points far from it
        model = linear_model(w, margin * float(w.norm()) - float((w * x).sum()))
        config = CertifyConfig(sigma=sigma, n0=50, n=20_000, alpha=0.001, batch_size=20_000)
        fixed = certify_sample(model, x, 1, i, config)
        adaptive, passes = certify_sample_adaptive(model, x, 1, i, config, target)
        fixed_hits += fixed.prediction == 1 and fixed.radius >= target
        adaptive_hits += adaptive.prediction == 1 and adaptive.radius >= target
        fixed_passes += config.n0 + config.n
        adaptive_passes += passes
        assert adaptive.radius <= margin + 1e-9  # never above the exact radius
    assert abs(fixed_hits - adaptive_hits) <= 1
    assert fixed_passes >= 5 * adaptive_passes


def test_certify_runs_keep_the_key_they_were_stored_with(digits_zoo) -> None:
    """`n` became the images and Cohen's draws `noise_draws`; the run key keeps the field names
    runs were stored under ("n" = draws, the images only through their indices' hash). A run
    stored before the counter-based noise rebuilds its key; the same command now draws other noise,
    so its key is that payload with noise="counter", and it never resumes the old run."""
    from advbench.data.registry import dataset_labels
    from advbench.data.subset import indices_hash, select_indices
    from advbench.engine.certify import resolve_certify
    from advbench.engine.runs import config_key
    from advbench.engine.spec import CertifySpec, Runtime

    spec = CertifySpec("rn18-nt", sigmas=(0.12, 0.25), n0=10, noise_draws=300, n=6, dataset="digits", alpha=0.01, seed=2)
    plan = resolve_certify(spec, Runtime(zoo=digits_zoo, device="cpu"))
    stored_before = {  # the payload as the code before the rename wrote it for `--n 300 --n-samples 6`
        "kind": "certify", "model": "rn18-nt", "checkpoint_sha256": plan.sha256, "dataset": "digits", "split": "test",
        "indices_hash": indices_hash(select_indices(dataset_labels("digits"), 6, 2)), "sigmas": [0.12, 0.25], "n0": 10, "n": 300,
        "alpha": 0.01, "seed": 2, "adaptive_radius": None,
    }
    from advbench.engine.run_key import CertifyRunKey

    assert CertifyRunKey.from_stored(stored_before).key() == config_key(stored_before)
    assert plan.payload() == {**stored_before, "noise": "counter"}


def test_certify_plan_from_objects_stores_the_certificates_of_the_named_run(digits_zoo, tmp_path) -> None:
    from advbench.data import load_dataset
    from advbench.engine.certify import CertifyPlan, certify_plan, run_certify
    from advbench.engine.spec import CertifySpec, Runtime
    from advbench.models.card import load_model
    from advbench.store import Store

    spec = CertifySpec("rn18-nt", sigmas=(0.25,), n0=10, noise_draws=100, n=5, dataset="digits")
    named = run_certify(spec, Runtime(db=tmp_path / "named.sqlite", zoo=digits_zoo, batch_size=50, device="cpu"))  # rows compared with a CPU plan
    with Store(tmp_path / "named.sqlite") as store:
        indices = sorted({r["sample_idx"] for r in store.certificate_rows(named.run_id)})
        expected = store.certificate_rows(named.run_id)
    model, _ = load_model("rn18-nt", "digits", digits_zoo)
    data = load_dataset("digits", "test", indices=torch.tensor(indices))
    plan = CertifyPlan.from_objects(model.net, data.images, data.labels, sigmas=(0.25,), n0=10, noise_draws=100, indices=torch.tensor(indices),
                                    mean=model.mean.flatten().tolist(), std=model.std.flatten().tolist(), device="cpu", batch_size=50)
    objects = certify_plan(plan, Runtime(db=tmp_path / "objects.sqlite"))
    with Store(tmp_path / "objects.sqlite") as store:
        got = store.certificate_rows(objects.run_id)
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in got] == [{k: v for k, v in r.items() if k not in drop} for r in expected]
    assert objects.curves == named.curves and plan.spec.dataset.startswith("tensors:")
