"""Reading the project's own files (suites, baselines) as typed data, with one clear error each.

The typed schemas themselves live beside their users (`engine/suite_schema.py`,
`report/baseline.py`); this module holds what they share:

- reading the files (`core/files.py`: `read_text`, `load_yaml`, `load_json`, re-exported here);
- `Section`: one mapping with its allowed keys, whose getters check each value's type and range
  and raise `UsageError("WHERE: 'KEY' must be WHAT, got THE VALUE")`.

Nothing here converts by coercion: a string is never read as a number, a list or a bool.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, NoReturn, overload

from advbench.core.errors import UsageError
from advbench.core.files import MAX_INT, describe, load_json, load_yaml, read_text

__all__ = [
    "MAX_INT",
    "Section",
    "describe",
    "in_range",
    "is_int",
    "is_number",
    "load_json",
    "load_yaml",
    "number_range",
    "read_text",
]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Section:
    """One mapping of a file: unknown keys refused, each value read with its type checked.

    `where` names the file and the place in it ("suite s.yaml", "baseline b.json, entries[3]").
    """

    def __init__(
        self,
        where: str,
        data: Any,
        allowed: Iterable[str],
        what: str = "a mapping",
        renamed: dict[str, str] | None = None,
    ) -> None:
        """`renamed`: keys of an older schema, each with what replaced it (refused with that line)."""
        if not isinstance(data, dict):
            raise UsageError(f"{where} must be {what}, got {describe(data)}")
        for old in sorted(str(k) for k in data if str(k) in (renamed or {})):
            raise UsageError(f"{where}: '{old}' is no longer a key: {(renamed or {})[old]}")
        allowed = set(allowed)
        unknown = sorted(str(k) for k in set(data) - allowed)
        if unknown:
            raise UsageError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
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
    def integer(
        self,
        key: str,
        default: int,
        minimum: int = 1,
        required: bool = False,
        null: Literal[""] = "",
    ) -> int: ...
    @overload
    def integer(
        self,
        key: str,
        default: None = None,
        minimum: int = 1,
        *,
        required: Literal[True],
        null: Literal[""] = "",
    ) -> int: ...
    @overload
    def integer(
        self,
        key: str,
        default: int | None = None,
        minimum: int = 1,
        required: bool = False,
        null: str = "",
    ) -> int | None: ...

    def integer(
        self,
        key: str,
        default: int | None = None,
        minimum: int = 1,
        required: bool = False,
        null: str = "",
    ) -> int | None:
        """An int >= minimum, `default` when the key is absent; `null` (what it means) allows an explicit null, read as None."""
        if null and key in self.data and self.data[key] is None:
            return None
        value = self.value(key, default, required)
        if value is not None and (not is_int(value) or not minimum <= value <= MAX_INT):
            want = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            self.fail(key, f"{want}{f' or null ({null})' if null else ''}", value)
        return value

    @overload
    def number(
        self,
        key: str,
        default: float,
        low: float = 0.0,
        high: float = math.inf,
        open_low: bool = False,
        open_high: bool = False,
        required: bool = False,
    ) -> float: ...
    @overload
    def number(
        self,
        key: str,
        default: None = None,
        low: float = 0.0,
        high: float = math.inf,
        open_low: bool = False,
        open_high: bool = False,
        *,
        required: Literal[True],
    ) -> float: ...
    @overload
    def number(
        self,
        key: str,
        default: float | None = None,
        low: float = 0.0,
        high: float = math.inf,
        open_low: bool = False,
        open_high: bool = False,
        required: bool = False,
    ) -> float | None: ...

    def number(
        self,
        key: str,
        default: float | None = None,
        low: float = 0.0,
        high: float = math.inf,
        open_low: bool = False,
        open_high: bool = False,
        required: bool = False,
    ) -> float | None:
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
    def text_list(
        self, key: str, what: str, default: tuple[str, ...], required: bool = False
    ) -> tuple[str, ...]: ...
    @overload
    def text_list(
        self, key: str, what: str, default: None = None, *, required: Literal[True]
    ) -> tuple[str, ...]: ...
    @overload
    def text_list(
        self, key: str, what: str, default: tuple[str, ...] | None = None, required: bool = False
    ) -> tuple[str, ...] | None: ...

    def text_list(
        self, key: str, what: str, default: tuple[str, ...] | None = None, required: bool = False
    ) -> tuple[str, ...] | None:
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
    def number_list(
        self,
        key: str,
        what: str,
        low: float = 0.0,
        high: float = math.inf,
        open_low: bool = False,
        scalar: bool = False,
        *,
        default: tuple[float, ...],
        required: bool = False,
    ) -> tuple[float, ...]: ...
    @overload
    def number_list(
        self,
        key: str,
        what: str,
        low: float = 0.0,
        high: float = math.inf,
        open_low: bool = False,
        scalar: bool = False,
        default: None = None,
        *,
        required: Literal[True],
    ) -> tuple[float, ...]: ...
    @overload
    def number_list(
        self,
        key: str,
        what: str,
        low: float = 0.0,
        high: float = math.inf,
        open_low: bool = False,
        scalar: bool = False,
        default: tuple[float, ...] | None = None,
        required: bool = False,
    ) -> tuple[float, ...] | None: ...

    def number_list(
        self,
        key: str,
        what: str,
        low: float = 0.0,
        high: float = math.inf,
        open_low: bool = False,
        scalar: bool = False,
        default: tuple[float, ...] | None = None,
        required: bool = False,
    ) -> tuple[float, ...] | None:
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

    def section(
        self, key: str, allowed: Iterable[str], what: str, renamed: dict[str, str] | None = None
    ) -> Section | None:
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


def in_range(
    value: Any, low: float, high: float, open_low: bool = False, open_high: bool = False
) -> bool:
    try:
        if not is_number(value) or not math.isfinite(value):
            return False
    except OverflowError:  # an int too large for a float
        return False
    return (value > low if open_low else value >= low) and (
        value < high if open_high else value <= high
    )


def number_range(low: float, high: float, open_low: bool = False, open_high: bool = False) -> str:
    if math.isinf(high):
        return f"a finite number {'>' if open_low else '>='} {low:g}"
    return f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
