"""A suite file as typed data: every key's type and range checked in one place, before anything runs.

    name: str                  (default: the file's stem)
    dataset: str               (default fashion-mnist)
    n: int >= 1 | null         (default 500; null: the whole split)
    seed: int >= 0             (default 0)
    batch_size: int >= 1       (default 256)
    models: [str, ...]         (non-empty)
    attacks: [str, ...]        (default [auto]; a threat may name its own)
    threats: [{norm: linf|l2|l1|l0, eps: number >= 0 | [numbers], attacks: [str, ...]}, ...]
    certify: {sigmas: [number > 0], n: int | null (images), n0: int, noise_draws: int, alpha: (0, 1), batch_size: int,
              sequential: bool, radii: [number >= 0], resolution: number > 0, precision: fp32|bf16|fp16}
    eot: int >= 1 | null       (default: chosen from the model)
    checks: true | false       (default true)
    check_n: int >= 1          (default 100: images the gradient-masking checks run on, as `eval --check-n`)

Unknown keys are errors, so a typo never silently shrinks a suite; a string is never read as a
list, a number or a bool. `n` is the number of images everywhere: the certify section's old
`n_samples` is refused with a line naming `n` and `noise_draws` (Cohen's draws, once its `n`).
The file is read without YAML anchors or aliases (`core.schema`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from advbench.core.errors import UsageError
from advbench.core.schema import Section, load_yaml
from advbench.core.threat import Norm

SUITE_KEYS = (
    "name",
    "dataset",
    "n",
    "seed",
    "batch_size",
    "models",
    "attacks",
    "threats",
    "certify",
    "eot",
    "checks",
    "check_n",
)
DEFAULT_ATTACKS = ("auto",)  # the default evaluation, as for `advbench eval`
THREAT_KEYS = ("norm", "eps", "attacks")  # attacks: this budget's own list instead of the suite's
CERTIFY_KEYS = (
    "sigmas",
    "n",
    "n0",
    "noise_draws",
    "alpha",
    "batch_size",
    "sequential",
    "radii",
    "resolution",
    "precision",
)
# Keys of an older schema, refused with what replaced them (a bare unknown-key error would not say
# that `n` changed meaning: it was the noise draws, it is now the images).
CERTIFY_RENAMED = {
    "n_samples": "the images are now 'n' and Cohen's noise draws (formerly 'n') are 'noise_draws'"
}


class SuiteThreat(NamedTuple):
    """One budget of a suite: a norm, its eps values and the attacks run (in sequence) at them.

    A NamedTuple (immutable, typed) so `for norm, eps, attacks in suite.threats` unpacks it.
    """

    norm: str
    eps: tuple[float, ...]
    attacks: tuple[str, ...]

    @classmethod
    def from_section(cls, section: Section, suite_attacks: tuple[str, ...] | None) -> SuiteThreat:
        norm = section.text("norm", required=True)
        if norm.lower() not in {n.value for n in Norm}:
            section.fail("norm", f"one of {', '.join(n.value for n in Norm)}", norm)
        eps = section.number_list("eps", "budgets", scalar=True, required=True)
        attacks = section.text_list("attacks", "attack specs", default=suite_attacks)
        if not attacks:
            raise UsageError(
                f"{section.where} has no attacks (give the suite's 'attacks' list or the threat's own)"
            )
        return cls(norm.lower(), eps, attacks)


@dataclass(frozen=True)
class CertifySettings:
    """A suite's certification section (Cohen et al.): one certification cell per model."""

    sigmas: tuple[float, ...] = (0.25,)
    n: int | None = 500  # images; None: the whole split
    n0: int = 100  # noise draws that pick the top class
    noise_draws: int = 100_000  # noise draws that bound its probability
    alpha: float = 0.001
    batch_size: int | None = (
        None  # noisy copies per forward pass; None: the runtime's or the default
    )
    sequential: bool = False  # as `certify --sequential`: noise_draws is each image's cap
    radii: tuple[float, ...] = ()
    resolution: float = 0.01
    precision: str = "fp32"

    @classmethod
    def from_section(cls, section: Section) -> CertifySettings:
        return cls(
            sigmas=section.number_list(
                "sigmas", "noise levels", open_low=True, scalar=True, default=cls.sigmas
            ),
            n=section.integer("n", cls.n, null="the whole split"),
            n0=section.integer("n0", cls.n0),
            noise_draws=section.integer("noise_draws", cls.noise_draws),
            alpha=section.number("alpha", cls.alpha, 0.0, 1.0, open_low=True, open_high=True),
            batch_size=section.integer("batch_size", None),
            sequential=section.boolean("sequential", cls.sequential),
            radii=section.number_list("radii", "L2 radii", scalar=True, default=()) or (),
            resolution=section.number("resolution", cls.resolution, 0.0, math.inf, open_low=True),
            precision=section.text("precision", cls.precision) or cls.precision,
        )


@dataclass(frozen=True)
class Suite:
    """Models x attacks x budgets (x certification settings); see the module docstring for the keys."""

    name: str
    models: tuple[str, ...]
    threats: tuple[SuiteThreat, ...]
    dataset: str = "fashion-mnist"
    n: int | None = 500  # None: the whole split
    seed: int = 0
    batch_size: int = 256
    eot: int | None = None
    checks: bool = True
    check_n: int = 100
    certify: CertifySettings | None = None

    @classmethod
    def from_yaml(cls, path: Path | str) -> Suite:
        """The suite in a YAML file; a one-line UsageError naming the file, key and value otherwise."""
        return cls.from_mapping(load_yaml(path, "suite"), f"suite {path}", Path(path).stem)

    @classmethod
    def from_mapping(cls, data: Any, where: str = "suite", default_name: str = "suite") -> Suite:
        top = Section(where, data, SUITE_KEYS, "a YAML mapping of " + ", ".join(SUITE_KEYS))
        attacks = top.text_list("attacks", "attack specs", default=DEFAULT_ATTACKS)
        threats = []
        for i, item in enumerate(top.items("threats", "budgets ({norm, eps})")):
            section = Section(
                f"{where}, threats[{i}]", item, THREAT_KEYS, "a mapping with norm and eps"
            )
            threats.append(SuiteThreat.from_section(section, attacks))
        certify = top.section(
            "certify",
            CERTIFY_KEYS,
            "a mapping of " + ", ".join(CERTIFY_KEYS),
            renamed=CERTIFY_RENAMED,
        )
        return cls(
            name=top.text("name", default_name),
            models=top.text_list("models", "model names", required=True),
            threats=tuple(threats),
            dataset=top.text("dataset", cls.dataset),
            n=top.integer("n", cls.n, null="the whole split"),
            seed=top.integer("seed", cls.seed, minimum=0),
            batch_size=top.integer("batch_size", cls.batch_size),
            eot=top.integer("eot", None),
            checks=top.boolean("checks", cls.checks),
            check_n=top.integer("check_n", cls.check_n),
            certify=CertifySettings.from_section(certify)
            if certify is not None and certify.data
            else None,
        )
