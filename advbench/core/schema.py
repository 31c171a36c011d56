"""Reading the project's own files (suites, baselines) as typed data, with one clear error each.

The typed schemas themselves live beside their users (`engine/suite_schema.py`,
`report/baseline.py`); this module holds what they share:

- `read_text`: a size cap and UTF-8 decoding, so random bytes are an error naming the file;
- `load_yaml`: a SafeLoader that refuses anchors and aliases before anything is expanded (a
  "billion laughs" file fails at its first `&`), refuses duplicate keys, and reads `1e-3` as a
  number (PyYAML alone reads it as a string);
- `load_json`: duplicate keys refused, nesting bounded;
- `Section`: one mapping with its allowed keys, whose getters check each value's type and range
  and raise `UsageError("WHERE: 'KEY' must be WHAT, got THE VALUE")`.

Nothing here converts by coercion: a string is never read as a number, a list or a bool.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, NoReturn, overload

import yaml

from advbench.core.errors import UsageError

MAX_FILE_BYTES = 4 * 1024 * 1024  # suites and baselines are a few KB; this bounds time and memory
MAX_INT = 2**63 - 1  # SQLite's INTEGER

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 4
_KINDS = {str: "the string", bool: "the boolean", int: "the integer", float: "the number", list: "the list", dict: "the mapping"}


def describe(value: Any) -> str:
    """A short, bounded, one-line description of a value for an error message."""
    if value is None:
        return "null"
    kind = _KINDS.get(type(value), f"a {type(value).__name__}")
    return f"{kind} {_REPR.repr(value)}"


def read_text(path: Path | str, what: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file's text; UsageError naming `what` and the path if it is missing, too large or not UTF-8."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UsageError(f"{what} {path} is {size} bytes; at most {max_bytes} are read")
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


class RefusedYaml(yaml.YAMLError):
    """YAML the project does not accept (anchors, aliases, duplicate keys), with its line."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(f"line {mark.line + 1}: {message}" if mark is not None else message)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases or duplicate keys.

    Anchors and aliases are refused by the scanner, so an alias bomb fails at its first `&`
    before a single node is composed; suites never need them.
    """

    def fetch_anchor(self) -> None:
        raise RefusedYaml("YAML anchors and aliases (&name, *name) are not allowed here", self.get_mark())

    def fetch_alias(self) -> None:
        raise RefusedYaml("YAML anchors and aliases (&name, *name) are not allowed here", self.get_mark())

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise RefusedYaml(f"duplicate key {_REPR.repr(key)}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 floats without a dot (1e-3, 2E5), which PyYAML's YAML 1.1 resolver leaves as strings.
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def load_yaml(path: Path | str, what: str) -> Any:
    """The YAML file's one document, read with `StrictLoader`; UsageError naming the file otherwise."""
    text = read_text(path, what)
    try:
        return yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise UsageError(f"cannot read {what} {path}: {yaml_problem(exc)}") from None
    except RecursionError:
        raise UsageError(f"cannot read {what} {path}: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # a scalar the constructor cannot build (a 5000-digit int, 2020-13-45)
        raise UsageError(f"cannot read {what} {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem and mark is not None:
        return f"line {mark.line + 1}: {problem}"
    text = str(exc).splitlines()
    return text[0] if text else type(exc).__name__


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def load_json(path: Path | str, what: str) -> Any:
    """The JSON file's value (duplicate keys refused); UsageError naming the file otherwise."""
    text = read_text(path, what)
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        raise UsageError(f"cannot read {what} {path}: line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None
    except RecursionError:
        raise UsageError(f"cannot read {what} {path}: nested too deeply") from None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Section:
    """One mapping of a file: unknown keys refused, each value read with its type checked.

    `where` names the file and the place in it ("suite s.yaml", "baseline b.json, entries[3]").
    """

    def __init__(self, where: str, data: Any, allowed: Iterable[str], what: str = "a mapping", renamed: dict[str, str] | None = None) -> None:
        """`renamed`: keys of an older schema, each with what replaced it (refused with that line)."""
        if not isinstance(data, dict):
            raise UsageError(f"{where} must be {what}, got {describe(data)}")
        for old in sorted(str(k) for k in data if str(k) in (renamed or {})):
            raise UsageError(f"{where}: '{old}' is no longer a key: {(renamed or {})[old]}")
        allowed = set(allowed)
        unknown = sorted(str(k) for k in set(data) - allowed)
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        self.where, self.data = where, data

    def fail(self, key: str, want: str, value: Any) -> NoReturn:
        raise UsageError(f"{self.where}: '{key}' must be {want}, got {describe(value)}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def value(self, key: str, default: Any = None, required: bool = False) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise UsageError(f"{self.where}: '{key}' is required")
            return default
        return self.data[key]

    # Each getter's overloads: a default or `required=True` gives the value's type, never None.
    @overload
    def text(self, key: str, default: str, required: bool = False) -> str: ...
    @overload
    def text(self, key: str, default: None = None, *, required: Literal[True]) -> str: ...
    @overload
    def text(self, key: str, default: str | None = None, required: bool = False) -> str | None: ...

    def text(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.value(key, default, required)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.fail(key, "a non-empty string", value)
        return value

    @overload
    def integer(self, key: str, default: int, minimum: int = 1, required: bool = False, null: Literal[""] = "") -> int: ...
    @overload
    def integer(self, key: str, default: None = None, minimum: int = 1, *, required: Literal[True], null: Literal[""] = "") -> int: ...
    @overload
    def integer(self, key: str, default: int | None = None, minimum: int = 1, required: bool = False, null: str = "") -> int | None: ...

    def integer(self, key: str, default: int | None = None, minimum: int = 1, required: bool = False, null: str = "") -> int | None:
        """An int >= minimum, `default` when the key is absent; `null` (what it means) allows an explicit null, read as None."""
        if null and key in self.data and self.data[key] is None:
            return None
        value = self.value(key, default, required)
        if value is not None and (not is_int(value) or not minimum <= value <= MAX_INT):
            want = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            self.fail(key, f"{want}{f' or null ({null})' if null else ''}", value)
        return value

    @overload
    def number(self, key: str, default: float, low: float = 0.0, high: float = math.inf,
               open_low: bool = False, open_high: bool = False, required: bool = False) -> float: ...
    @overload
    def number(self, key: str, default: None = None, low: float = 0.0, high: float = math.inf,
               open_low: bool = False, open_high: bool = False, *, required: Literal[True]) -> float: ...
    @overload
    def number(self, key: str, default: float | None = None, low: float = 0.0, high: float = math.inf,
               open_low: bool = False, open_high: bool = False, required: bool = False) -> float | None: ...

    def number(self, key: str, default: float | None = None, low: float = 0.0, high: float = math.inf,
               open_low: bool = False, open_high: bool = False, required: bool = False) -> float | None:
        value = self.value(key, default, required)
        if value is None:
            return None
        want = number_range(low, high, open_low, open_high)
        if not in_range(value, low, high, open_low, open_high):
            self.fail(key, want, value)
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.value(key, default)
        if not isinstance(value, bool):
            self.fail(key, "true or false", value)
        return value

    @overload
    def text_list(self, key: str, what: str, default: tuple[str, ...], required: bool = False) -> tuple[str, ...]: ...
    @overload
    def text_list(self, key: str, what: str, default: None = None, *, required: Literal[True]) -> tuple[str, ...]: ...
    @overload
    def text_list(self, key: str, what: str, default: tuple[str, ...] | None = None, required: bool = False) -> tuple[str, ...] | None: ...

    def text_list(self, key: str, what: str, default: tuple[str, ...] | None = None, required: bool = False) -> tuple[str, ...] | None:
        """A non-empty list of non-empty strings; a bare string is refused, never read letter by letter."""
        value = self.value(key, default, required)
        if value is None or isinstance(value, tuple):
            return value
        hint = f" (write [{value}])" if isinstance(value, str) and value.strip() else ""
        if not isinstance(value, list) or not value:
            self.fail(key, f"a non-empty list of {what}{hint}", value)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.fail(f"{key}[{i}]", f"a {what.rstrip('s')} (a non-empty string)", item)
        return tuple(value)

    @overload
    def number_list(self, key: str, what: str, low: float = 0.0, high: float = math.inf, open_low: bool = False,
                    scalar: bool = False, *, default: tuple[float, ...], required: bool = False) -> tuple[float, ...]: ...
    @overload
    def number_list(self, key: str, what: str, low: float = 0.0, high: float = math.inf, open_low: bool = False,
                    scalar: bool = False, default: None = None, *, required: Literal[True]) -> tuple[float, ...]: ...
    @overload
    def number_list(self, key: str, what: str, low: float = 0.0, high: float = math.inf, open_low: bool = False,
                    scalar: bool = False, default: tuple[float, ...] | None = None, required: bool = False) -> tuple[float, ...] | None: ...

    def number_list(self, key: str, what: str, low: float = 0.0, high: float = math.inf, open_low: bool = False,
                    scalar: bool = False, default: tuple[float, ...] | None = None, required: bool = False) -> tuple[float, ...] | None:
        """A non-empty list of numbers in range (`scalar`: a single number stands for a list of one)."""
        value = self.value(key, default, required)
        if value is None or isinstance(value, tuple):
            return value
        if scalar and is_number(value):
            value = [value]
        want = f"a non-empty list of {what} ({number_range(low, high, open_low, False)})"
        if not isinstance(value, list) or not value:
            self.fail(key, want, value)
        for i, item in enumerate(value):
            if not in_range(item, low, high, open_low, False):
                self.fail(f"{key}[{i}]", number_range(low, high, open_low, False), item)
        return tuple(float(v) for v in value)

    def section(self, key: str, allowed: Iterable[str], what: str, renamed: dict[str, str] | None = None) -> Section | None:
        value = self.value(key)
        if value is None:
            return None
        return Section(f"{self.where}, {key}", value, allowed, what, renamed)

    def items(self, key: str, what: str, required: bool = True) -> list[Any]:
        value = self.value(key, required=required)
        if value is None:
            return []
        if not isinstance(value, list) or not value:
            self.fail(key, f"a non-empty list of {what}", value)
        return value


def in_range(value: Any, low: float, high: float, open_low: bool = False, open_high: bool = False) -> bool:
    try:
        if not is_number(value) or not math.isfinite(value):
            return False
    except OverflowError:  # an int too large for a float
        return False
    return (value > low if open_low else value >= low) and (value < high if open_high else value <= high)


def number_range(low: float, high: float, open_low: bool = False, open_high: bool = False) -> str:
    if math.isinf(high):
        return f"a finite number {'>' if open_low else '>='} {low:g}"
    return f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
