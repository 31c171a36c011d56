"""Typed JSON fields with a write rule: the machinery of the run keys (`run_key`).

A `KeyPart` is a frozen dataclass whose fields each declare, through `always()` or
`unless_default(...)`, whether its JSON payload always holds them or only when they differ from
their default; `from_object` rebuilds one from JSON, checking every value's type once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

from advbench.core.errors import UsageError

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
    return field(
        default=default,
        metadata={
            RULE: WriteRule(False, default if omitted is dataclasses.MISSING else omitted, codec)
        },
    )


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
        return from_object(cls, data, cls.__name__, TypeError, extra=False)


_RULES: dict[type, tuple[tuple[str, WriteRule, Any], ...]] = {}


def _rules(cls: type) -> tuple[tuple[str, WriteRule, Any], ...]:
    """(name, rule, type) of each field of a key dataclass; TypeError for a field without a rule."""
    if cls not in _RULES:
        hints, rules = typing.get_type_hints(cls), []
        for f in dataclasses.fields(cls):
            rule = f.metadata.get(RULE)
            if not isinstance(rule, WriteRule):
                raise TypeError(
                    f"{cls.__name__}.{f.name} declares no write rule: give it always() or unless_default(...)"
                )
            rules.append((f.name, rule, hints[f.name]))
        _RULES[cls] = tuple(rules)
    return _RULES[cls]


def _pairs(tp: Any) -> Any:
    """Y for tuple[tuple[str, Y], ...] (a JSON object as pairs), else None."""
    item = (
        typing.get_args(tp)[0]
        if typing.get_origin(tp) is tuple and typing.get_args(tp)[1:] == (Ellipsis,)
        else None
    )
    pair = typing.get_args(item) if typing.get_origin(item) is tuple else ()
    return pair[1] if len(pair) == 2 and pair[0] is str else None


def _optional(tp: Any) -> Any:
    """X for X | None, else None."""
    rest = [a for a in typing.get_args(tp) if a is not type(None)]
    return (
        rest[0]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(rest) == 1
        else None
    )


def _to_json(tp: Any, value: Any) -> Any:
    if value is None or _optional(tp) is not None:
        return None if value is None else _to_json(_optional(tp), value)
    if _pairs(tp) is not None:
        return {k: _to_json(_pairs(tp), v) for k, v in value}
    if typing.get_origin(tp) is tuple:
        return [_to_json(typing.get_args(tp)[0], v) for v in value]
    return (
        value.payload()
        if isinstance(value, KeyPart)
        else value.to_json()
        if isinstance(value, JsonMap)
        else value
    )


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
        return (
            None
            if _scalar_ok(tp, value)
            else f"must be {tp.__name__}, got {type(value).__name__} {value!r}"
        )
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
        return JsonMap.of(raw) if tp is JsonMap else from_object(tp, raw, where, error, extra=False)
    if typing.get_origin(tp) is tuple:
        if not isinstance(raw, (list, tuple)):
            raise error(f"{where} must be a list, got {raw!r}")
        return tuple(
            _from_json(typing.get_args(tp)[0], v, f"{where}[{i}]", error) for i, v in enumerate(raw)
        )
    return raw


def from_object(
    cls: type[K], raw: Mapping[str, Any], where: str, error: type[Exception], extra: bool
) -> K:
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
        values = {
            name: _from_json(
                tp, rule.codec[1](raw[name]) if rule.codec else raw[name], f"{where}.{name}", error
            )
            for name, rule, tp in rules
            if name in raw
        }
        return cls(**values, **{name: rule.default for name, rule, _ in rules if name not in raw})
    except (TypeError, ValueError, UsageError) as exc:
        raise error(f"{where}: {exc}") from None
