"""What each paper reports for a registered model (paper_facts.yaml, read with safe_load).

The file holds, per model name: the paper file and section, the paper's own dataset, threat
model and training recipe, and every number it reports (clean and robust accuracy, with the
attack and budget). Cards copy their entry so leaderboards can show the paper beside us.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from advbench.core.paper_facts import own_variant

__all__ = [
    "DEFAULT_THREAT",
    "FACTS_FILE",
    "default_threat",
    "own_variant",
    "paper_facts",
    "reported_numbers",
]

FACTS_FILE = Path(__file__).with_name("paper_facts.yaml")

# The threat model a checkpoint is judged under by default, per dataset: the papers' budgets
# (Fashion-MNIST Linf 0.1: dissertation Table 4.1, smooth-kernels App. A; CIFAR Linf 8/255).
DEFAULT_THREAT = {
    "fashion-mnist": {"norm": "linf", "eps": 0.1},
    "mnist": {"norm": "linf", "eps": 0.3},
    "digits": {"norm": "linf", "eps": 0.1},
    "cifar10": {"norm": "linf", "eps": 8 / 255},
    "cifar100": {"norm": "linf", "eps": 8 / 255},
}


@functools.cache
def _all_facts() -> dict[str, Any]:
    data = yaml.safe_load(FACTS_FILE.read_text())
    return data if isinstance(data, dict) else {}


def paper_facts(name: str) -> dict[str, Any]:
    """The paper's entry for `name` ({} when the papers say nothing about it)."""
    return dict(_all_facts().get(name, {}))


def reported_numbers(name: str, dataset: str | None = None) -> list[dict[str, Any]]:
    """Numbers the paper reports for `name`, optionally only those on `dataset`."""
    rows = paper_facts(name).get("reported", [])
    return [r for r in rows if dataset is None or r.get("dataset") == dataset]


def default_threat(dataset: str) -> dict[str, Any]:
    return dict(DEFAULT_THREAT.get(dataset, {"norm": "linf", "eps": 8 / 255}))
