"""A run's identity as a typed, frozen, versioned value: `EvalRunKey` and `CertifyRunKey`.

Identity is what determines a run's results, nothing else. An evaluation: the model's name and
checkpoint sha256, dataset, split, subset (its indices' hash), norm, eps list, each attack's label
and resolved config, per attack what adaptive evaluation chose before the checks (`Adaptation`:
EOT draws, BPDA, ...), the seed, and whether the checks run and on how many samples (`check_n`
counts only with checks). A certification: model, checkpoint, dataset, split, subset, sigmas,
Cohen's n0, n (noise draws) and alpha, seed, adaptive radius, the sequential look schedule
(`SequentialLooks`), precision. Not identity: where and how a run runs (device, batch size, Ray,
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

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

from advbench.core.errors import StoreError, UsageError
from advbench.engine.runs import config_key

SCHEMA_VERSION = 1
RULE = "run_key"  # the metadata entry in which a field declares how it is written


@dataclass(frozen=True)
class WriteRule:
    """How a field is written: `always`, or only when it differs from `default`; `codec` maps
    the value to its JSON form and back (None: the value is its JSON form)."""

    always: bool
    default: Any = None
    codec: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None


def always(default: Any = dataclasses.MISSING) -> Any:
    """A field written into every payload."""
    return field(default=default, metadata={RULE: WriteRule(True)})


def unless_default(default: Any, *, omitted: Any = dataclasses.MISSING, codec: Any = None) -> Any:
    """A field written only when it differs from `omitted` (default: `default`), the value that a
    payload without it means."""
    return field(default=default, metadata={RULE: WriteRule(False, default if omitted is dataclasses.MISSING else omitted, codec)})


# A bool written as "on"/"off" (any other text is left as it is, for the type check to refuse).
ON_OFF = (lambda on: "on" if on else "off", lambda text: {"on": True, "off": False}.get(text, text))


@dataclass(frozen=True)
class JsonMap:
    """A JSON object, frozen: sorted (name, value) pairs, nested objects as JsonMaps, lists as tuples."""

    items: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> JsonMap:
        if not all(isinstance(k, str) for k in data):
            raise TypeError("JSON object names must be strings")
        return cls(tuple(sorted((k, _freeze(v)) for k, v in data.items())))

    def to_json(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self.items}


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return JsonMap.of(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _thaw(value: Any) -> Any:
    if isinstance(value, JsonMap):
        return value.to_json()
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


K = TypeVar("K", bound="KeyPart")
R = TypeVar("R", bound="RunKey")


class KeyPart:
    """A frozen dataclass of the key (or of a part of it) under the write rule."""

    def __post_init__(self) -> None:
        for name, _, tp in _rules(type(self)):
            problem = _wrong(tp, getattr(self, name))
            if problem:
                raise TypeError(f"{type(self).__name__}.{name} {problem}")

    def payload(self) -> dict[str, Any]:
        out = {}
        for name, rule, tp in _rules(type(self)):
            value = getattr(self, name)
            if rule.always or value != rule.default:
                out[name] = rule.codec[0](value) if rule.codec else _to_json(tp, value)
        return out

    @classmethod
    def of(cls: type[K], data: Mapping[str, Any]) -> K:
        """From its JSON object (exactly its fields); TypeError when one is unknown or mistyped."""
        return _from_object(cls, data, cls.__name__, TypeError, extra=False)


_RULES: dict[type, tuple[tuple[str, WriteRule, Any], ...]] = {}


def _rules(cls: type) -> tuple[tuple[str, WriteRule, Any], ...]:
    """(name, rule, type) of each field of a key dataclass; TypeError for a field without a rule."""
    if cls not in _RULES:
        hints, rules = typing.get_type_hints(cls), []
        for f in dataclasses.fields(cls):
            rule = f.metadata.get(RULE)
            if not isinstance(rule, WriteRule):
                raise TypeError(f"{cls.__name__}.{f.name} declares no write rule: give it always() or unless_default(...)")
            rules.append((f.name, rule, hints[f.name]))
        _RULES[cls] = tuple(rules)
    return _RULES[cls]


def _pairs(tp: Any) -> Any:
    """Y for tuple[tuple[str, Y], ...] (a JSON object as pairs), else None."""
    item = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple and typing.get_args(tp)[1:] == (Ellipsis,) else None
    pair = typing.get_args(item) if typing.get_origin(item) is tuple else ()
    return pair[1] if len(pair) == 2 and pair[0] is str else None


def _optional(tp: Any) -> Any:
    """X for X | None, else None."""
    rest = [a for a in typing.get_args(tp) if a is not type(None)]
    return rest[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(rest) == 1 else None


def _to_json(tp: Any, value: Any) -> Any:
    if value is None or _optional(tp) is not None:
        return None if value is None else _to_json(_optional(tp), value)
    if _pairs(tp) is not None:
        return {k: _to_json(_pairs(tp), v) for k, v in value}
    if typing.get_origin(tp) is tuple:
        return [_to_json(typing.get_args(tp)[0], v) for v in value]
    return value.payload() if isinstance(value, KeyPart) else value.to_json() if isinstance(value, JsonMap) else value


def _scalar_ok(tp: Any, value: Any) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:  # an int is a float here (PEP 484), kept as given so its JSON stays the same
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, tp)


def _wrong(tp: Any, value: Any) -> str | None:
    """Why the Python `value` is not a `tp`, or None."""
    if _optional(tp) is not None:
        return None if value is None else _wrong(_optional(tp), value)
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, tuple):
            return f"must be a tuple, got {type(value).__name__} {value!r}"
        if args[1:] == (Ellipsis,):
            return next((p for p in (_wrong(args[0], v) for v in value) if p), None)
        if len(value) != len(args):
            return f"must be a tuple of {len(args)}, got {value!r}"
        return next((p for p in (_wrong(a, v) for a, v in zip(args, value)) if p), None)
    if isinstance(tp, type):
        return None if _scalar_ok(tp, value) else f"must be {tp.__name__}, got {type(value).__name__} {value!r}"
    return f"has a type the key cannot hold: {tp}"


def _from_json(tp: Any, raw: Any, where: str, error: type[Exception]) -> Any:
    """JSON `raw` shaped as a `tp`: lists as tuples, objects as key parts, JsonMaps or pairs. The
    scalars are checked when the key part holding them is built."""
    if raw is None or _optional(tp) is not None:
        return None if raw is None else _from_json(_optional(tp), raw, where, error)
    pairs = _pairs(tp)
    if pairs is not None or tp is JsonMap or (isinstance(tp, type) and issubclass(tp, KeyPart)):
        if not isinstance(raw, Mapping):
            raise error(f"{where} must be a JSON object, got {raw!r}")
        if pairs is not None:
            return tuple((k, _from_json(pairs, v, f"{where}.{k}", error)) for k, v in raw.items())
        return JsonMap.of(raw) if tp is JsonMap else _from_object(tp, raw, where, error, extra=False)
    if typing.get_origin(tp) is tuple:
        if not isinstance(raw, (list, tuple)):
            raise error(f"{where} must be a list, got {raw!r}")
        return tuple(_from_json(typing.get_args(tp)[0], v, f"{where}[{i}]", error) for i, v in enumerate(raw))
    return raw


def _from_object(cls: type[K], raw: Mapping[str, Any], where: str, error: type[Exception], extra: bool) -> K:
    """`cls` from a JSON object: an absent field takes its omitted value; with `extra`, names that
    are no field are ignored (a stored config holds more than the payload)."""
    rules = _rules(cls)
    unknown = sorted(set(raw) - {name for name, _, _ in rules})
    if unknown and not extra:
        raise error(f"{where} has unknown field(s) {', '.join(map(repr, unknown))}")
    missing = [name for name, rule, _ in rules if rule.always and name not in raw]
    if missing:
        raise error(f"{where} lacks the field {missing[0]!r}")
    try:
        values = {name: _from_json(tp, rule.codec[1](raw[name]) if rule.codec else raw[name], f"{where}.{name}", error) for name, rule, tp in rules if name in raw}
        return cls(**values, **{name: rule.default for name, rule, _ in rules if name not in raw})
    except (TypeError, ValueError, UsageError) as exc:
        raise error(f"{where}: {exc}") from None


class RunKey(KeyPart):
    """A run's identity: `payload()` is hashed by `key()`."""

    def key(self) -> str:
        return config_key(self.payload())

    def __post_init__(self) -> None:
        super().__post_init__()
        version = getattr(self, "schema_version")
        if not 1 <= version <= SCHEMA_VERSION:
            raise ValueError(f"run key schema version {version} is not one this advbench knows (1 to {SCHEMA_VERSION}); a newer advbench wrote it")

    @classmethod
    def from_stored(cls: type[R], config: Mapping[str, Any]) -> R:
        """The key of a stored run, rebuilt from its config; StoreError (one line) when a field is
        missing or mistyped."""
        if not isinstance(config, Mapping):
            raise StoreError(f"stored run config must be a JSON object, got {type(config).__name__}")
        stored = config.get("run_key")  # runs stored since 0.2 keep their key's payload apart
        if isinstance(stored, Mapping):
            return _from_object(cls, stored, "stored run key", StoreError, extra=True)
        return _from_object(cls, cls._identity(config), "stored run config", StoreError, extra=True)

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
    autoattack_version: str | None = unless_default(None)  # AutoAttack: 'standard', 'plus' or 'rand'


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
    adaptations: tuple[tuple[str, Adaptation], ...] = unless_default(())  # label -> choice; () for runs of other tools
    checks: bool = unless_default(True, codec=ON_OFF)
    check_n: int = unless_default(100)
    schema_version: int = unless_default(SCHEMA_VERSION, omitted=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.checks and self.check_n != 100:
            object.__setattr__(self, "check_n", 100)
        if not self.attacks:
            raise UsageError("an evaluation needs at least one attack")
        names = {a.name for a in self.attacks}
        if any(label not in names for label, _ in self.adaptations):
            raise ValueError(f"adaptations name attacks the run does not have: {sorted({lab for lab, _ in self.adaptations} - names)}")

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
    schema_version: int = unless_default(SCHEMA_VERSION, omitted=1)

    def __post_init__(self) -> None:
        super().__post_init__()
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
    added, attacks, adaptations = esc.get("attacks") or [], config.get("attacks"), config.get("adaptations")
    if not (added or esc.get("log_outputs") or esc.get("random")):
        return config
    if esc.get("random"):
        raise StoreError("stored run was escalated to a random model: the EOT draws its key hashed (before the checks) are not stored, so its key cannot be rebuilt")
    if not (isinstance(added, list) and all(isinstance(a, str) for a in added)):
        raise StoreError(f"stored run config.escalation.attacks must be a list of attack specs, got {added!r}")
    well_formed = isinstance(attacks, list) and all(isinstance(a, Mapping) and isinstance(a.get("name"), str) for a in attacks)
    if not (well_formed and isinstance(adaptations, Mapping) and all(isinstance(a, Mapping) for a in adaptations.values())):
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
        chosen = {label: {k: v for k, v in a.items() if k != "log_outputs"} for label, a in chosen.items()}
    return {**config, "attacks": kept, "adaptations": chosen}
