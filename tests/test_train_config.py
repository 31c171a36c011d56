"""The training config: `--set` parsing, the CLI's override merge, and one-way imports inside advbench.train."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from advbench.core.errors import UsageError
from advbench.train import config_for, merge_overrides, option_rows, parse_options
from advbench.train.config import TrainConfig

TRAIN = Path(__file__).resolve().parents[1] / "advbench" / "train"


def test_merge_overrides_drops_unset_options_and_merges_model_kwargs() -> None:
    given = {"epochs": 2, "lr": None, "at_eps": 0.2, "seed": None}
    assert merge_overrides("digits", given, [], {"width": None, "noise_sigma": None}) == {"dataset": "digits", "epochs": 2, "at_eps": 0.2}
    merged = merge_overrides("digits", {"epochs": 2}, ["epochs=3", 'model_kwargs={"width": 8, "dropout": 0.0}', "flip=false"], {"width": 4, "noise_sigma": None})
    # --set comes after the named options; named model kwargs go on top of --set model_kwargs.
    assert merged == {"dataset": "digits", "epochs": 3, "flip": False, "model_kwargs": {"width": 4, "dropout": 0.0}}
    assert merge_overrides("digits", {}, [], {"noise_sigma": 0.2}) == {"dataset": "digits", "model_kwargs": {"noise_sigma": 0.2}}
    config = config_for("rn18-nt", **merged)
    assert config.epochs == 3 and config.model_kwargs["width"] == 4 and not config.flip
    with pytest.raises(UsageError, match="unknown training option"):
        merge_overrides("digits", {}, ["nope=1"], {})


def test_parse_options_types_values_from_the_dataclass() -> None:
    assert parse_options(["at-steps=7", "max_train=none", "init_from=rn18-nt", "lr=0.5"]) == {"at_steps": 7, "max_train": None, "init_from": "rn18-nt", "lr": 0.5}
    with pytest.raises(UsageError, match="not a valid int"):
        parse_options(["epochs=two"])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_options(["epochs"])
    assert [row[0] for row in option_rows()] == [name for name in TrainConfig.__dataclass_fields__ if name != "model"]


def _train_imports(path: Path) -> tuple[set[str], list[str]]:
    """advbench.train modules imported at module level, and any imported elsewhere (in a function, under an if)."""
    tree = ast.parse(path.read_text())
    ours = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("advbench.train")]
    top = {n.module.rsplit(".", 1)[1] for n in ours if n in tree.body}
    return top, [n.module for n in ours if n not in tree.body]


def test_train_modules_import_one_way_without_hidden_imports() -> None:
    graph = {}
    for path in TRAIN.glob("*.py"):
        if path.stem == "__init__":
            continue
        top, hidden = _train_imports(path)
        assert not hidden, f"{path.name} imports {hidden} inside a function or an if"
        graph[path.stem] = top
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        assert name not in stack, f"import cycle: {' -> '.join(stack + (name,))}"
        if name not in done:
            for dep in graph.get(name, ()):
                visit(dep, stack + (name,))
            done.add(name)

    for name in graph:
        visit(name, ())
    assert graph["config"] == set() and "loop" not in graph["recipes"] | graph["stages"] and "partial" not in graph["loop"]
