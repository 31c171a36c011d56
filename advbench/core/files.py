"""Reading the project's own files (suites, baselines) safely, with one clear error each.

- `read_text`: a size cap and UTF-8 decoding, so random bytes are an error naming the file;
- `load_yaml`: a SafeLoader that refuses anchors and aliases before anything is expanded (a
  "billion laughs" file fails at its first `&`), refuses duplicate keys, and reads `1e-3` as a
  number (PyYAML alone reads it as a string);
- `load_json`: duplicate keys refused, nesting bounded.

`schema` types what they return.
"""

from __future__ import annotations

import json
import re
import reprlib
from pathlib import Path
from typing import Any

import yaml

from advbench.core.errors import UsageError

MAX_FILE_BYTES = 4 * 1024 * 1024  # suites and baselines are a few KB; this bounds time and memory
MAX_INT = 2**63 - 1  # SQLite's INTEGER

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 4
_KINDS = {
    str: "the string",
    bool: "the boolean",
    int: "the integer",
    float: "the number",
    list: "the list",
    dict: "the mapping",
}


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
        raise UsageError(
            f"cannot read {what} {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{what} {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None


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
        raise RefusedYaml(
            "YAML anchors and aliases (&name, *name) are not allowed here", self.get_mark()
        )

    def fetch_alias(self) -> None:
        raise RefusedYaml(
            "YAML anchors and aliases (&name, *name) are not allowed here", self.get_mark()
        )

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
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
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
    except (
        ValueError,
        OverflowError,
    ) as exc:  # a scalar the constructor cannot build (a 5000-digit int, 2020-13-45)
        raise UsageError(
            f"cannot read {what} {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


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
