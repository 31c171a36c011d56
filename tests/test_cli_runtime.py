"""Every runtime option reaches the library, for every command that runs models.

Each case invokes the CLI in-process with distinctive runtime options, with the library function
the command calls replaced by a recorder, and checks what arrived: the `Runtime` (device, db,
zoo, data dir, batch size, fresh, Ray) or, for training and the analyses, the matching arguments.
No model runs, so the whole file takes seconds.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import torch
from typer.testing import CliRunner

from advbench.cli.app import app
from advbench.core.errors import UsageError
from advbench.core.threat import Norm, ThreatModel, parse_threat
from advbench.engine.spec import CertifySpec, EvalSpec, Runtime


class Recorder:
    """Stands in for a library function: keeps every call's arguments, returns `result`."""

    def __init__(self, result: Any = None) -> None:
        self.result = result
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.result


def patch(monkeypatch: pytest.MonkeyPatch, target: str, value: object) -> None:
    """Replace MODULE.NAME on the module itself (from sys.modules)."""
    module, _, name = target.rpartition(".")
    monkeypatch.setattr(importlib.import_module(module), name, value)


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def eval_outcome(run_id: str = "run-1") -> SimpleNamespace:
    summary = SimpleNamespace(run_id=run_id, to_dict=lambda: {"run_id": run_id})
    return SimpleNamespace(summary=summary, resumed=False, already_finished=False, warnings=[], adaptations={}, checks=[],
                           verdict=None, escalation=None, to_dict=lambda: {"run_id": run_id})


@pytest.fixture
def paths(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(db=tmp_path / "runs.sqlite", zoo=tmp_path / "zoo", data=tmp_path / "data", out=tmp_path / "out", tmp=tmp_path)


def runtime_args(p: SimpleNamespace) -> list[str]:
    return ["--device", "cpu", "--db", str(p.db), "--zoo", str(p.zoo), "--data-dir", str(p.data), "--batch-size", "7", "--fresh", "--ray", "local"]


def expected_runtime(p: SimpleNamespace) -> Runtime:
    return Runtime(device="cpu", db=p.db, zoo=p.zoo, data_dir=p.data, batch_size=7, fresh=True, ray="local")


def suite_file(p: SimpleNamespace) -> Path:
    path = p.tmp / "suite.yaml"
    path.write_text("models: [rn18-nt]\nthreats: [{norm: linf, eps: [0.1]}]\nattacks: [fgsm]\n")
    return path


# Each case: (patch target, what it returns, the command line, a check of the recorded call).
Case = tuple[str, Callable[[SimpleNamespace], Any], Callable[[SimpleNamespace], list[str]], Callable[[Recorder, SimpleNamespace], None]]


def _eval_check(rec: Recorder, p: SimpleNamespace) -> None:
    (spec, runtime), kwargs = rec.calls[0]
    assert runtime == expected_runtime(p)
    assert isinstance(spec, EvalSpec) and spec.model == "rn18-nt" and spec.norm == "l2" and spec.n is None
    assert spec.weights == str(p.tmp / "w.pt") and callable(kwargs["progress"])


def _certify_check(rec: Recorder, p: SimpleNamespace) -> None:
    (spec, runtime), _ = rec.calls[0]
    assert runtime == expected_runtime(p)
    assert isinstance(spec, CertifySpec) and spec.weights == str(p.tmp / "w.pt") and spec.n is None


def _curve_check(rec: Recorder, p: SimpleNamespace) -> None:
    assert len(rec.calls) == 2  # one evaluation per model, over the whole grid
    for (spec, runtime), kwargs in rec.calls:
        assert runtime == expected_runtime(p)
        assert spec.eps == (0.0, 0.05, 0.1) and spec.norm == "l2" and spec.checks is False and callable(kwargs["progress"])


def _suite_check(rec: Recorder, p: SimpleNamespace) -> None:
    (suite, runtime), kwargs = rec.calls[0]
    assert suite.models == ("rn18-nt",) and runtime == expected_runtime(p)


def _train_check(rec: Recorder, p: SimpleNamespace) -> None:
    args, kwargs = rec.calls[0]
    config, out_dir, device, data_dir, resume = args
    assert config.model == "rn18-nt" and config.epochs == 1 and config.model_kwargs.get("width") == 4
    assert out_dir == p.out and device == torch.device("cpu") and data_dir == str(p.data) and resume is True


def _partial_check(rec: Recorder, p: SimpleNamespace) -> None:
    (code, cutoff, config, out_dir, device), kwargs = rec.calls[0]
    assert (code, cutoff, out_dir, device) == ("A1N2", "stages.0", p.out, torch.device("cpu"))
    assert kwargs["data_dir"] == str(p.data) and kwargs["resume"] is True


def _layers_check(rec: Recorder, p: SimpleNamespace) -> None:
    args, kwargs = rec.calls[0]
    assert args[:4] == ("rn18-nt", "A1N2", ["stages.0"], p.out) and args[4] == torch.device("cpu")
    assert kwargs["seed"] == 3 and kwargs["data_dir"] == str(p.data)


def _psr_check(rec: Recorder, p: SimpleNamespace) -> None:
    (name, run), kwargs = rec.calls[0]
    assert name == "psr" and (run.device, run.zoo, run.data_dir, run.batch_size, run.seed) == ("cpu", str(p.zoo), str(p.data), 7, 3)
    assert kwargs["norm"] == "l2"


CASES: dict[str, Case] = {
    "eval": ("advbench.engine.evaluate.run_eval", lambda p: eval_outcome(),
             lambda p: ["eval", "-m", "rn18-nt", "--norm", "L2", "--n", "0", "--weights", str(p.tmp / "w.pt"), "--json", *runtime_args(p)], _eval_check),
    "certify": ("advbench.engine.certify.run_certify", lambda p: SimpleNamespace(to_dict=lambda: {}),
                lambda p: ["certify", "-m", "rn18-nt", "--n", "0", "--weights", str(p.tmp / "w.pt"), "--json", *runtime_args(p)], _certify_check),
    "curve": ("advbench.engine.curve.run_eval", lambda p: eval_outcome(),
              lambda p: ["curve", "-m", "rn18-nt", "-m", "kap-rn18", "--norm", "l2", "--eps", "0:0.1:0.05", "--out", str(p.out), *runtime_args(p)], _curve_check),
    "run": ("advbench.engine.suite.run_suite", lambda p: [], lambda p: ["run", str(suite_file(p)), *runtime_args(p)], _suite_check),
    "check --suite": ("advbench.engine.suite.run_suite", lambda p: [],
                      lambda p: ["check", "--suite", str(suite_file(p)), "--update", "--baseline", str(p.tmp / "b.json"), *runtime_args(p)], _suite_check),
    "train": ("advbench.train.loop.train_model", lambda p: SimpleNamespace(weights="m.safetensors", sha256="0" * 64, name="m"),
              lambda p: ["train", "-m", "rn18-nt", "--epochs", "1", "--width", "4", "--out", str(p.out), "--device", "cpu",
                         "--data-dir", str(p.data), "--resume"], _train_check),
    "train --partial": ("advbench.train.partial.train_partial", lambda p: SimpleNamespace(weights="m.safetensors", name="m"),
                        lambda p: ["train", "-m", "rn18-nt", "--partial", "A1N2", "--cutoff", "stages.0", "--out", str(p.out), "--device", "cpu",
                                   "--data-dir", str(p.data), "--resume"], _partial_check),
    "analyze layers": ("advbench.analysis.layers.layer_sweep", lambda p: (SimpleNamespace(columns=["cutoff"], rows=[]), {}),
                       lambda p: ["analyze", "layers", "-m", "rn18-nt", "--cutoff", "stages.0", "--seed", "3", "--out", str(p.out),
                                  "--device", "cpu", "--data-dir", str(p.data)], _layers_check),
    "analyze psr": ("advbench.analysis.runner.run_analysis", lambda p: (SimpleNamespace(summary={}, columns=["layer"], rows=[]), {}),
                    lambda p: ["analyze", "psr", "-m", "rn18-nt", "--norm", "l2", "--seed", "3", "--batch-size", "7", "--device", "cpu",
                               "--zoo", str(p.zoo), "--data-dir", str(p.data)], _psr_check),
}


@pytest.mark.parametrize("command", list(CASES))
def test_runtime_options_reach_the_library(command: str, paths: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    target, result, argv, check = CASES[command]
    recorder = Recorder(result(paths))
    patch(monkeypatch, target, recorder)
    if command in ("curve",):
        monkeypatch.setattr("advbench.report.curves.write_curves", Recorder(([], paths.out.with_suffix(".csv"), paths.out.with_suffix(".png"))))
    if command == "check --suite":
        from advbench.store import Store

        with Store(paths.db):  # the gate reads the database the suite wrote
            pass
        # The stand-in suite stores nothing, and --update refuses to write an empty baseline.
        monkeypatch.setattr("advbench.report.regression.update_baseline", Recorder([]))
    invoke(*argv(paths))
    assert recorder.calls, f"{command} did not call {target}"
    check(recorder, paths)


def test_defaults_leave_batch_size_to_the_library_and_no_resume_means_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(eval_outcome())
    patch(monkeypatch, "advbench.engine.evaluate.run_eval", recorder)
    invoke("eval", "-m", "rn18-nt", "--no-resume", "--json")
    (spec, runtime), _ = recorder.calls[0]
    assert runtime == Runtime(fresh=True) and runtime.batch_size is None and spec.n == 1000 and spec.norm == "linf"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["eval", "-m", "rn18-nt", "--norm", "l3"], "unknown norm 'l3'"),
        (["curve", "-m", "rn18-nt", "--norm", "linf2"], "unknown norm"),
        (["leaderboard", "--format", "xml"], "unknown format 'xml'"),
        (["leaderboard", "--threat", "linf:nan"], "NORM:EPS"),
        (["eval"], "Missing option '--model'"),
    ],
)
def test_bad_choices_are_usage_errors_on_one_line(args: list[str], needle: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from advbench.cli.app import main

    monkeypatch.setattr("sys.argv", ["advbench", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


@pytest.mark.parametrize("text,expected", [("linf:0.1", ThreatModel(Norm.LINF, 0.1)), ("L2:0.5", ThreatModel(Norm.L2, 0.5)), (" l0:3 ", ThreatModel(Norm.L0, 3.0))])
def test_parse_threat(text: str, expected: ThreatModel) -> None:
    assert parse_threat(text) == expected


@pytest.mark.parametrize("text", ["linf", "linf:", "l3:0.1", "linf:x", "linf:nan", "linf:inf", "l2:-0.5", ":0.1"])
def test_parse_threat_rejects(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_threat(text)
    assert "\n" not in str(info.value)


def test_cli_starts_without_torch() -> None:
    import subprocess
    import sys

    code = "import sys, advbench.cli.app; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0, "`advbench runs` and `leaderboard` must not load torch"


def test_json_summary_is_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    patch(monkeypatch, "advbench.engine.evaluate.run_eval", Recorder(eval_outcome("abc")))
    assert json.loads(invoke("eval", "-m", "rn18-nt", "--json").stdout) == {"run_id": "abc"}
