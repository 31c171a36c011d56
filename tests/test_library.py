"""`advbench.evaluate` and `advbench.certify`: one call on a model object and tensors, on the
engine the CLI uses; and the README's example, run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

import advbench
from advbench.attacks.gradient import PGD, PGDConfig
from advbench.core.errors import UsageError
from advbench.core.threat import Norm, ThreatModel
from advbench.store import Store


@pytest.fixture(scope="module")
def digits_split(digits_model, digits_data) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The digits fixture's model (a `RobustModel`; `.net` is the bare network) and 24 test images."""
    x, y = digits_data
    return digits_model, x[:24], y[:24]


def test_import_is_light_and_names_load_on_use() -> None:
    code = "import sys, advbench; assert 'torch' not in sys.modules; advbench.evaluate; assert 'torch' in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
    assert {"evaluate", "certify", "ThreatModel"} <= set(dir(advbench))
    with pytest.raises(AttributeError):
        advbench.no_such_name  # noqa: B018


def test_evaluate_returns_per_sample_results_consistent_with_the_summary(digits_split) -> None:
    model, x, y = digits_split
    result = advbench.evaluate(model, x, y, threat=["linf:0.02", ThreatModel(Norm.LINF, 0.1)], attack=["fgsm", "pgd:steps=5"], device="cpu")
    assert result.eps == [0.02, 0.1] and result.robust.shape == (24, 2) and result.clean_correct.shape == (24,)
    assert result.verdict in ("reliable", "escalated", "unreliable") and result.checks  # the checks ran by default
    assert result.clean_accuracy == pytest.approx(result.clean_correct.float().mean().item())
    worst = [e.worst_case for e in result.summary.per_eps]
    assert result.robust.float().mean(0).tolist() == pytest.approx(worst)
    assert list(result.robust_accuracy.values()) == pytest.approx(worst)
    assert worst[1] < result.clean_accuracy  # the attacks did something on this model
    assert not (result.robust & ~result.clean_correct.view(-1, 1)).any()  # robust implies correct
    assert bool((result.robust[:, 1] <= result.robust[:, 0]).all())  # a larger budget never helps a sample
    attacked = {(r["sample_idx"], r["eps"]) for r in result.rows if r["status"] == "attacked" and r["success"]}
    for i in range(24):
        assert bool(result.robust[i, 1]) == (bool(result.clean_correct[i]) and (i, 0.1) not in attacked)


def test_an_attack_object_is_the_run_its_spec_names(digits_split, tmp_path: Path) -> None:
    model, x, y = digits_split
    db = tmp_path / "runs.sqlite"
    by_spec = advbench.evaluate(model, x, y, "linf:0.1", "pgd:steps=5", checks=False, device="cpu", db=db)
    by_object = advbench.evaluate(model, x, y, "linf:0.1", PGD(PGDConfig(steps=5)), checks=False, device="cpu", db=db)
    assert by_object.summary.run_id == by_spec.summary.run_id  # found again by its key, not re-run
    assert by_object.summary.attacks == ["pgd:steps=5"] and by_spec.verdict is None
    assert torch.equal(by_object.robust, by_spec.robust)
    with Store(db) as store:
        assert len(store.list_runs()) == 1


@pytest.mark.parametrize(
    "threat,attack,needle",
    [
        ("linf", "fgsm", "NORM:EPS"),
        (["linf:0.1", "l2:0.5"], "fgsm", "one norm per evaluation"),
        (ThreatModel(Norm.LINF, 0.1, targeted=True), "fgsm", "targeted"),
        ("linf:0.1", "pgdd", "did you mean pgd"),
        ("linf:0.1", 3, "give an attack as a spec"),
        ("linf:2", "fgsm", "exceeds 1"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(digits_split, threat, attack, needle: str) -> None:
    model, x, y = digits_split
    with pytest.raises(UsageError, match=needle) as info:
        advbench.evaluate(model, x, y, threat, attack, device="cpu")
    assert "\n" not in str(info.value)


def test_bad_tensors_are_refused(digits_split) -> None:
    model, x, y = digits_split
    with pytest.raises(UsageError, match="N x C x H x W"):
        advbench.evaluate(model, x[0], y, "linf:0.1", device="cpu")
    with pytest.raises(UsageError, match="torch tensors"):
        advbench.certify(model, x.numpy(), y, device="cpu")


def test_certify_returns_per_sample_certificates_matching_the_summary(digits_split) -> None:
    model, x, y = digits_split
    cert = advbench.certify(model.net, x[:6], y[:6], sigma=[0.12, 0.25], n0=10, noise_draws=200, mean=model.mean.flatten().tolist(),
                            std=model.std.flatten().tolist(), device="cpu", batch_size=100)
    assert cert.sigmas == [0.12, 0.25] and cert.prediction.shape == cert.radius.shape == (6, 2) and len(cert.rows) == 12
    for j, sigma in enumerate(cert.sigmas):
        curve = cert.summary.curves[f"{sigma:g}"]
        for r, share in zip(curve["radii"], curve["certified_accuracy"]):
            assert cert.certified_accuracy(r)[sigma] == pytest.approx(share)
        assert bool(((cert.prediction[:, j] == -1) <= (cert.radius[:, j] == 0)).all())  # an abstention certifies nothing
    assert cert.certified_accuracy(0.0)[0.12] > 0  # a trained model is certified somewhere


def test_the_readme_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "advbench.evaluate(" in b]
    assert len(blocks) == 1, "README.md should hold one example calling advbench.evaluate"
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    result, cert = namespace["result"], namespace["cert"]
    assert isinstance(result, advbench.Evaluation) and isinstance(cert, advbench.Certification)
    assert result.verdict in ("reliable", "escalated", "unreliable") and result.clean_accuracy > 0.8  # the quick fit learned digits
    assert 0 <= result.robust_accuracy[0.1] < result.clean_accuracy
    assert cert.radius.shape == (64, 1)
    assert str(result.verdict) in capsys.readouterr().out
