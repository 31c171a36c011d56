"""One generic registry serving models, attacks and datasets alike."""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from advbench.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> entry mapping filled by decorators; duplicates and unknown names are errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register `entry` under `name`; a name registered twice raises `ValueError`."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def decorator(
        self, name: str, make_entry: Callable[[Callable], T]
    ) -> Callable[[Callable], Callable]:
        """A decorator registering `make_entry(fn)` under `name` and returning `fn` unchanged."""

        def wrap(fn: Callable) -> Callable:
            self.add(name, make_entry(fn))
            return fn

        return wrap

    def get(self, name: str) -> T:
        """The entry for `name`; an unknown name raises `UnknownNameError` with the closest names."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """The error for an unknown `name`: the closest names, or every name when none is close."""
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else f"; known: {', '.join(sorted(self._entries))}"
        )
        return f"unknown {self.kind} {name!r}{hint}"

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard (`'kap-*'`), sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
