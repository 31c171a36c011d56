"""A run's identity as a typed, frozen, versioned value: `EvalRunKey` and `CertifyRunKey`.

Identity is what determines a run's results, nothing else. An evaluation: the model's name and
checkpoint sha256, dataset, split, subset (its indices' hash), norm, eps list, each attack's label
and resolved config, per attack what adaptive evaluation chose before the checks (`Adaptation`:
EOT draws, BPDA, ...), the seed, and whether the checks run and on how many samples (`check_n`
counts only with checks). A certification: model, checkpoint, dataset, split, subset, sigmas,
Cohen's n0, n (noise draws) and alpha, seed, adaptive radius, the sequential look schedule
(`SequentialLooks`), precision, the noise stream (`noise`: counter-based since issue 39; runs
stored before drew from torch.Generator). Both: the device class the rows are computed on ("cpu"
or "cuda": floating point rounds differently there, so results can differ) and whether TF32 was
allowed on it. Not identity: where and how a run runs otherwise (which GPU, batch size, Ray,
database), its provenance, what the checks changed (the escalation, stored with the run).

`payload()` is the JSON object hashed by `key()` = `runs.config_key` (sha256 of `json.dumps(payload,
sort_keys=True)`), exactly as before. Tuples are written as lists, a tuple of (name, value) pairs
as an object (`adaptations`), nested key dataclasses as objects under the same rule, `JsonMap` (an
attack's free-form config) as an object; numbers keep their type (an int stays an int).

The rule for fields. Every field declares how it is written, in `field(metadata=...)` through
`always()` or `unless_default(...)` (a field without one is a TypeError):
- `always()`: in every payload; only fields that were there from the start;
- `unless_default(default)`: only when its value differs from the value a payload without it
  means (`omitted`, by default the default). A stored run without the field takes that value:
  `adaptations` is omitted when empty, as in runs stored before it existed and other tools' runs.
A new option is added as `unless_default(<the behaviour before it existed>)`: no stored key
changes, only runs that use the option get new keys. Adding an `always()` field, renaming a field
or changing the value it is omitted at changes stored keys: never do it without a version bump.

The schema version. `SCHEMA_VERSION` (now 1) is every key's `schema_version`, written only when it
is not 1, so no key stored so far changes. Bump it only when an existing field's meaning or
encoding must change: new keys then carry the new version, so they cannot collide with keys of the
old meaning and old runs are not resumed under the new one. `from_stored` refuses newer versions.

Stored runs. A stored config holds the payload's fields at its top level (and more, ignored). An
evaluation whose checks escalated stores its attacks and adaptations after the escalation, while
its key hashed those before: `from_stored` removes the escalation's attacks (appended after the
run's own) and `log_outputs` flags. A run escalated as random cannot be rebuilt: the EOT draws its
key hashed are not stored (StoreError).
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from advbench.core.errors import StoreError, UsageError
from advbench.engine.key_fields import ON_OFF, JsonMap, KeyPart, always, from_object, unless_default
from advbench.engine.runs import config_key

SCHEMA_VERSION = 1
R = TypeVar("R", bound="RunKey")
DEVICE_CLASSES = ("cpu", "cuda")
# A certification's noise: "counter" keys every noisy copy by (seed, image, sigma, draw index)
# (`certification.noise`); "torch-generator" (runs stored before issue 39) drew from one
# torch.Generator per image in chunks of the batch size. Never resumed into one another.
NOISE_STREAM = "counter"
NOISE_STREAMS = (NOISE_STREAM, "torch-generator")


def check_numerics(device: str, tf32: bool) -> None:
    """A key's device class is cpu or cuda; TF32 exists only on CUDA."""
    if device not in DEVICE_CLASSES:
        raise ValueError(f"device must be one of {', '.join(DEVICE_CLASSES)}, got {device!r}")
    if tf32 and device != "cuda":
        raise ValueError("tf32 is a CUDA setting; a cpu run has none")


class RunKey(KeyPart):
    """A run's identity: `payload()` is hashed by `key()`."""

    def key(self) -> str:
        return config_key(self.payload())

    def __post_init__(self) -> None:
        super().__post_init__()
        version = getattr(self, "schema_version")
        if not 1 <= version <= SCHEMA_VERSION:
            raise ValueError(
                f"run key schema version {version} is not one this advbench knows (1 to {SCHEMA_VERSION}); a newer advbench wrote it"
            )

    @classmethod
    def from_stored(cls: type[R], config: Mapping[str, Any]) -> R:
        """The key of a stored run, rebuilt from its config; StoreError (one line) when a field is
        missing or mistyped."""
        if not isinstance(config, Mapping):
            raise StoreError(
                f"stored run config must be a JSON object, got {type(config).__name__}"
            )
        stored = config.get("run_key")  # runs stored since 0.2 keep their key's payload apart
        if isinstance(stored, Mapping):
            return from_object(cls, stored, "stored run key", StoreError, extra=True)
        return from_object(cls, cls._identity(config), "stored run config", StoreError, extra=True)

    @classmethod
    def _identity(cls, config: Mapping[str, Any]) -> Mapping[str, Any]:
        return config


@dataclass(frozen=True)
class AttackKey(KeyPart):
    """An attack of the run: its canonical label and its resolved config."""

    name: str = always()
    config: JsonMap = always()


@dataclass(frozen=True)
class Adaptation(KeyPart):
    """What adaptive evaluation chose for one attack (`AttackedModel.adaptations()`)."""

    eot_draws: int = always()
    bpda: bool = always()
    stochastic_model: bool = always()
    treated_as_random: bool = unless_default(False)
    log_outputs: bool = unless_default(False)
    surrogate: str | None = unless_default(None)  # transfer attacks
    autoattack_version: str | None = unless_default(
        None
    )  # AutoAttack: 'standard', 'plus' or 'rand'
    vote: str | None = unless_default(
        None
    )  # random models: the rule judging a point (VoteRule.label)
    confirm_draws: int | None = unless_default(
        None
    )  # random models: the cap on a vote confirming an early stop (None: the vote's cap)


@dataclass(frozen=True)
class EvalRunKey(RunKey):
    """An evaluation's identity (`EvalPlan.payload()`). `check_n` means nothing without checks:
    it is kept at its default then."""

    model: str = always()
    checkpoint_sha256: str = always()
    dataset: str = always()
    split: str = always()
    indices_hash: str = always()
    norm: str = always()
    eps: tuple[float, ...] = always()
    attacks: tuple[AttackKey, ...] = always()
    seed: int = always()
    adaptations: tuple[tuple[str, Adaptation], ...] = unless_default(
        ()
    )  # label -> choice; () for runs of other tools
    checks: bool = unless_default(True, codec=ON_OFF)
    check_n: int = unless_default(100)
    # The checks' Square probe budget on a model declared random at inference (None: 500, as
    # runs stored before it; `attacks.stage_checks`). Only with checks on such a model.
    random_square_probe: int | None = unless_default(None)
    device: str = unless_default("cpu")  # the device class the rows are computed on
    tf32: bool = unless_default(False)  # TF32 allowed on CUDA (`--tf32`)
    schema_version: int = unless_default(SCHEMA_VERSION, omitted=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_numerics(self.device, self.tf32)
        if not self.checks and self.check_n != 100:
            object.__setattr__(self, "check_n", 100)
        if not self.checks:
            object.__setattr__(self, "random_square_probe", None)
        if not self.attacks:
            raise UsageError("an evaluation needs at least one attack")
        names = {a.name for a in self.attacks}
        if any(label not in names for label, _ in self.adaptations):
            raise ValueError(
                f"adaptations name attacks the run does not have: {sorted({lab for lab, _ in self.adaptations} - names)}"
            )

    @classmethod
    def _identity(cls, config: Mapping[str, Any]) -> Mapping[str, Any]:
        return before_checks(config)


@dataclass(frozen=True)
class SequentialLooks(KeyPart):
    """Sequential certification: the radii decided (empty: the whole curve), the curve's
    resolution and the look schedule."""

    radii: tuple[float, ...] = always()
    resolution: float = always()
    first_look: int = always()
    growth: float = always()


@dataclass(frozen=True)
class CertifyRunKey(RunKey):
    """A certification's identity (`CertifyPlan.payload()`). `n` is Cohen's noise draws (the
    spec's `noise_draws`; the name predates `--n` meaning images)."""

    model: str = always()
    checkpoint_sha256: str = always()
    dataset: str = always()
    split: str = always()
    indices_hash: str = always()
    sigmas: tuple[float, ...] = always()
    n0: int = always()
    n: int = always()
    alpha: float = always()
    seed: int = always()
    adaptive_radius: float | None = always()
    kind: str = always("certify")
    sequential: SequentialLooks | None = unless_default(None)
    precision: str = unless_default("fp32")
    noise: str = unless_default(NOISE_STREAM, omitted="torch-generator")
    device: str = unless_default("cpu")
    tf32: bool = unless_default(False)
    schema_version: int = unless_default(SCHEMA_VERSION, omitted=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_numerics(self.device, self.tf32)
        if self.noise not in NOISE_STREAMS:
            raise ValueError(f"noise must be one of {', '.join(NOISE_STREAMS)}, got {self.noise!r}")
        if self.kind != "certify":
            raise ValueError(f"kind must be 'certify', got {self.kind!r}")


def _spec_form(text: str) -> tuple[Any, ...]:
    """An attack spec up to the order and spelling of its options (`attacks.registry.attack_label`
    without the registry): `pgd:steps=100,restarts=3` and `pgd:restarts=3,steps=100` match."""
    name, sep, rest = text.strip().partition(":")
    if not sep:
        return (name,)
    if "=" not in re.split("[:,]", rest, maxsplit=1)[0]:  # a wrapper: NAME:INNER_SPEC
        return (name, _spec_form(rest))
    options = (part.partition("=") for part in rest.split(",") if part.strip())
    return (name, tuple(sorted((k.strip().replace("-", "_"), v.strip()) for k, _, v in options)))


def before_checks(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """A stored evaluation's config with the escalation undone: its attacks and adaptations as
    the key hashed them, before the checks (see the module's docstring)."""
    esc = config.get("escalation") or {}
    if not isinstance(esc, Mapping):
        raise StoreError(f"stored run config.escalation must be a JSON object, got {esc!r}")
    added, attacks, adaptations = (
        esc.get("attacks") or [],
        config.get("attacks"),
        config.get("adaptations"),
    )
    if not (added or esc.get("log_outputs") or esc.get("random")):
        return config
    if esc.get("random"):
        raise StoreError(
            "stored run was escalated to a random model: the EOT draws its key hashed (before the checks) are not stored, so its key cannot be rebuilt"
        )
    if not (isinstance(added, list) and all(isinstance(a, str) for a in added)):
        raise StoreError(
            f"stored run config.escalation.attacks must be a list of attack specs, got {added!r}"
        )
    well_formed = isinstance(attacks, list) and all(
        isinstance(a, Mapping) and isinstance(a.get("name"), str) for a in attacks
    )
    if not (
        well_formed
        and isinstance(adaptations, Mapping)
        and all(isinstance(a, Mapping) for a in adaptations.values())
    ):
        return config  # malformed: parsing says what is wrong
    # The escalation's attacks were appended after the run's own, in its order (one it could not
    # build, a transfer attack without a surrogate, is missing).
    kept, pending = list(typing.cast(list, attacks)), [_spec_form(a) for a in added]
    while kept and pending:
        if _spec_form(kept[-1]["name"]) == pending[-1]:
            kept.pop()
        pending.pop()
    names = {a["name"] for a in kept}
    chosen = {label: a for label, a in adaptations.items() if label in names}
    if esc.get("log_outputs"):  # before the checks no attack attacked log-outputs
        chosen = {
            label: {k: v for k, v in a.items() if k != "log_outputs"} for label, a in chosen.items()
        }
    return {**config, "attacks": kept, "adaptations": chosen}
