"""Certificates independent of the batch size, of the images sharing a forward pass and of resumes
(issue 39): every noisy copy's noise is keyed by (seed, image, sigma, draw index).

The images are 3 x 30 x 30 (2,700 values, not a multiple of 16): with torch's CPU generator drawn
in chunks of the batch size, these gave different counts at --batch-size 50 and 400.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from advbench.certification.cohen import CertifyConfig, certify_sample, certify_sample_adaptive
from advbench.certification.forward import count_votes
from advbench.certification.noise import image_key, noise
from advbench.certification.sequential import SequentialConfig, certify_sequential
from advbench.core.errors import UsageError
from advbench.engine.certify import CertifyPlan, certify_plan
from advbench.engine.spec import Runtime
from advbench.models.wrapper import RobustModel
from advbench.store import Store

SHAPE = (3, 30, 30)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 9 * 9, 3))


def images(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, *SHAPE, generator=gen), torch.arange(n) % 3


def model() -> RobustModel:
    return RobustModel(small_net(), SHAPE, 3)


def test_a_copys_noise_depends_on_its_key_and_draw_only() -> None:
    keys = torch.tensor([image_key(0, i, 0.25) for i in (5, 5, 9)])
    draws = torch.tensor([3, 4, 3])
    together = noise(keys, draws, SHAPE)
    alone = torch.cat([noise(keys[i : i + 1], draws[i : i + 1], SHAPE) for i in range(3)])
    assert together.dtype == torch.float32 and together.shape == (3, *SHAPE)
    assert torch.equal(together, alone)
    assert not torch.equal(together[0], together[1]) and not torch.equal(together[0], together[2])
    assert abs(float(together.mean())) < 0.05 and abs(float(together.std()) - 1) < 0.05


@pytest.mark.parametrize("batch_size", [1, 7, 50, 400, 5000])
def test_votes_do_not_depend_on_the_batch_size(batch_size: int) -> None:
    x, _ = images(3)
    keys = torch.tensor([image_key(0, i, 0.5) for i in range(3)])
    starts = torch.tensor([0, 17, 100])
    want = torch.stack([count_votes(model(), x[i : i + 1], keys[i : i + 1], starts[i : i + 1], 300, 0.5, 300)[0] for i in range(3)])
    got = count_votes(model(), x, keys, starts, 300, 0.5, batch_size)
    assert torch.equal(got, want) and int(got.sum()) == 900
    assert len({tuple(row.tolist()) for row in got}) > 1  # the images vote differently: the test can see a mix-up


def test_certify_and_adaptive_do_not_depend_on_the_batch_size() -> None:
    x, _ = images(2)
    for sigma in (0.25, 0.5):
        small, large = (CertifyConfig(sigma=sigma, n0=30, n=500, alpha=0.01, batch_size=b) for b in (50, 400))
        for index in (0, 1):
            assert certify_sample(model(), x[index], 0, index, small) == certify_sample(model(), x[index], 0, index, large)
            assert certify_sample_adaptive(model(), x[index], 0, index, small, 0.1) == certify_sample_adaptive(
                model(), x[index], 0, index, large, 0.1
            )


def test_sequential_does_not_depend_on_the_batch_size_or_the_other_images() -> None:
    x, y = images(4)
    configs = [SequentialConfig(sigma=0.5, n0=20, max_draws=2000, alpha=0.01, radii=(0.1,), batch_size=b) for b in (33, 400, 5000)]
    runs = [certify_sequential(model(), x, y.tolist(), [10, 11, 12, 13], c, seed=3) for c in configs]
    assert runs[0] == runs[1] == runs[2]
    alone = certify_sequential(model(), x[2:3], [int(y[2])], [12], configs[1], seed=3)
    assert alone == [runs[0][2]]
    # The sequential answer at full draws is CERTIFY's: its copies are CERTIFY's copies.
    full = SequentialConfig(sigma=0.5, n0=20, max_draws=300, alpha=0.01, resolution=1e-9, first_look=300, batch_size=64)
    (cert, _), = certify_sequential(model(), x[:1], [0], [10], full, seed=3)
    fixed = certify_sample(model(), x[0], 0, 10, CertifyConfig(sigma=0.5, n0=20, n=300, alpha=full.alpha_per_look, batch_size=64), seed=3)
    assert cert == fixed


def _rows(db: Path, run_id: str) -> list[dict[str, Any]]:
    with Store(db) as store:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in store.certificate_rows(run_id)]


@pytest.mark.parametrize("sequential", [False, True])
def test_stored_certificates_are_the_same_at_any_batch_size_and_after_a_resume(tmp_path: Path, sequential: bool) -> None:
    """`--batch-size 50`, `--batch-size 1000`, and a run that lost some of its certificates and
    resumed at another batch size store identical rows, and are one run (the batch size is no part
    of the key)."""
    x, y = images(5)
    options = dict(sigmas=(0.25, 0.5), n0=20, noise_draws=400, alpha=0.01, device="cpu", sequential=sequential)
    ran = []
    for batch, db in ((50, "small.sqlite"), (1000, "large.sqlite")):
        plan = CertifyPlan.from_objects(small_net(), x, y, batch_size=batch, **options)
        ran.append((tmp_path / db, certify_plan(plan, Runtime(db=tmp_path / db)).run_id))
    want = _rows(*ran[0])
    assert len(want) == 10 and _rows(*ran[1]) == want
    assert len({r["count_top"] for r in want}) > 1

    db = ran[0][0]
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM certificates WHERE sample_idx IN (1, 3) OR sigma = 0.5 AND sample_idx = 4")
        conn.execute("UPDATE runs SET status = 'running'")
    resumed_plan = CertifyPlan.from_objects(small_net(), x, y, batch_size=7, **options)
    again = certify_plan(resumed_plan, Runtime(db=db))
    assert again.run_id == ran[0][1] and _rows(db, again.run_id) == want


def test_adaptive_and_sequential_honour_the_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    """--adaptive drew in fp32 whatever --precision said, while the run was stored under it."""
    from advbench.certification import forward

    used: list[str] = []
    real = forward.precision_context
    monkeypatch.setattr(forward, "precision_context", lambda dev, precision: used.append(precision) or real(dev, precision))
    x, _ = images(1)
    config = CertifyConfig(sigma=0.25, n0=10, n=200, batch_size=64, precision="bf16")
    certify_sample_adaptive(model(), x[0], 0, 0, config, 0.1)
    certify_sequential(model(), x, [0], [0], SequentialConfig(sigma=0.25, n0=10, max_draws=200, batch_size=64, precision="bf16"))
    assert used and set(used) == {"bf16"}
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        certify_sample_adaptive(model(), x[0], 0, 0, CertifyConfig(sigma=0.25, n0=10, n=200, precision="fp16"), 0.1)
