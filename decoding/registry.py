"""`Registry`: the one shape of every table in the repository that maps a name to an
implementation (processors, decoding strategies, regularizers, WGAN objectives, toy
distributions, Xiangqi players, ...).

A registry is a read-only ``Mapping[str, T]`` with a single way in, ``register``::

    PROCESSORS = Registry("processor")

    @PROCESSORS.register("top_k")  # as a class or function decorator
    class TopKProcessor(LogitsProcessor): ...

    STRATEGIES.register("greedy", greedy_search)  # directly

A name is registered once: a second ``register`` of it raises a ValueError naming the name and
the entry it already has. Looking up an unknown name raises `UnknownNameError`, which names
the kind of thing, the name and the known names, and is both a KeyError and a ValueError (so
``except ValueError`` around an argument check catches it, as does ``except KeyError``).
``names()`` lists the names sorted; iteration follows registration order.

The module has no dependencies, so that every package may use it (``regularizers`` imports this
module and nothing else of ``decoding``; tests/test_layout.py holds that rule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar, overload

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")

_NOTHING = object()


class UnknownNameError(KeyError, ValueError):
    """A name that is not in a `Registry` (a KeyError and a ValueError).

    Attributes:
        kind: what the registry holds (``"processor"``, ``"regularizer"``, ...).
        name: the name looked up.
        known: the registered names, sorted.
    """

    def __init__(self, kind: str, name: object, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        listed = ", ".join(known) if known else "(none)"
        super().__init__(f"unknown {kind} {name!r}; known: {listed}")

    def __str__(self) -> str:  # KeyError's own __str__ would quote the message
        return str(self.args[0])


class Registry(Mapping[str, T], Generic[T]):
    """A read-only name -> ``T`` mapping filled with `register`.

    Args:
        kind: what the registry holds, in the singular, for messages (``"processor"``).
        entries: names and objects to register at once, in order.
        on_register: called as ``on_register(name, obj)`` after each registration (e.g. to set
            a class attribute ``name``).
    """

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, T] | None = None,
        *,
        on_register: Callable[[str, T], object] | None = None,
    ) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._on_register = on_register
        for name, obj in (entries or {}).items():
            self.register(name, obj)

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: object = _NOTHING) -> object:
        """Add ``obj`` under ``name`` and return it; without ``obj``, return a decorator that
        does so. A name already registered raises a ValueError naming its entry."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.kind} name must be a non-empty string, got {name!r}")

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(
                    f"{self.kind} name {name!r} is already registered to {self._entries[name]!r}"
                )
            self._entries[name] = entry
            if self._on_register is not None:
                self._on_register(name, entry)
            return entry

        return add if obj is _NOTHING else add(obj)  # type: ignore[arg-type]

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
