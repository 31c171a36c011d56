"""A regression baseline file as typed data, every value checked where it is read.

    {"seed": 0, "n": 200,                 # optional: defaults for entries that do not give them
     "entries": [{"model": str, "dataset": str, "norm": "linf|l2|l1|l0", "eps": number >= 0,
                  "attack": str (an attack label or "worst case"), "accuracy": number in [0, 1],
                  "n": int >= 1, "seed": int >= 0}, ...]}   # at least one entry

`n` and `seed` are the settings the baseline's numbers were measured with; the gate refuses to
compare a stored run made with others. Baselines written before `seed` was recorded are still
read (their seed is not checked). Unknown keys, duplicate entries, strings where numbers belong,
NaN, infinities and accuracies outside [0, 1] are one-line errors naming the entry and key.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from advbench.core.errors import UsageError
from advbench.core.schema import Section, load_json
from advbench.core.threat import Norm

ENTRY_KEYS = ("model", "dataset", "norm", "eps", "attack", "accuracy", "n", "seed")
BASELINE_KEYS = ("entries", "n", "seed")


@dataclass(frozen=True)
class BaselineEntry:
    """One baseline number: robust accuracy of a model at a budget after an attack (or the worst case)."""

    model: str
    dataset: str
    norm: str
    eps: float
    attack: str
    accuracy: float  # in [0, 1]
    n: int  # samples the accuracy was measured on
    seed: int | None = None  # the run's seed; None in baselines written before it was recorded

    @property
    def label(self) -> str:
        return f"{self.model} {self.dataset} {self.norm} {self.eps:g} {self.attack}"

    @classmethod
    def from_section(cls, section: Section, n: int | None, seed: int | None) -> BaselineEntry:
        norm = section.text("norm", required=True)
        if norm.lower() not in {v.value for v in Norm}:
            section.fail("norm", f"one of {', '.join(v.value for v in Norm)}", norm)
        return cls(
            model=section.text("model", required=True),
            dataset=section.text("dataset", required=True),
            norm=norm.lower(),
            eps=section.number("eps", required=True),
            attack=section.text("attack", required=True),
            accuracy=section.number("accuracy", low=0.0, high=1.0, required=True),
            n=section.integer("n", required=True) if n is None else section.integer("n", n),
            seed=section.integer("seed", seed, minimum=0),
        )


@dataclass(frozen=True)
class Baseline:
    """The entries of a baseline file (at least one)."""

    entries: tuple[BaselineEntry, ...]

    @classmethod
    def from_json(cls, path: Path | str) -> Baseline:
        """The baseline in a JSON file; a one-line UsageError naming the file, entry and key otherwise."""
        return cls.from_data(load_json(path, "baseline"), f"baseline {path}")

    @classmethod
    def from_data(cls, data: Any, where: str = "baseline") -> Baseline:
        top = Section(where, data, BASELINE_KEYS, 'a JSON object {"entries": [...]}')
        n, seed = top.integer("n"), top.integer("seed", minimum=0)
        entries: list[BaselineEntry] = []
        first: dict[tuple[str, str, str, float, str], int] = {}
        for i, item in enumerate(
            top.items("entries", "entries (model, dataset, norm, eps, attack, accuracy, n)")
        ):
            entry = BaselineEntry.from_section(
                Section(f"{where}, entries[{i}]", item, ENTRY_KEYS, "an object"), n, seed
            )
            key = (entry.model, entry.dataset, entry.norm, entry.eps, entry.attack)
            if key in first:
                raise UsageError(
                    f"{where}: entries[{i}] repeats entries[{first[key]}] ({entry.label})"
                )
            first[key] = i
            entries.append(entry)
        return cls(tuple(entries))

    def to_json(self) -> str:
        return json.dumps({"entries": [asdict(e) for e in self.entries]}, indent=2) + "\n"

    def write(self, path: Path) -> None:
        """Write atomically (a temporary file renamed over the old one), never an empty baseline."""
        if not self.entries:
            raise UsageError(f"refusing to write an empty baseline to {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)
