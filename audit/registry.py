"""Name -> factory registries, one per family (defenses, attacks, datasets, models).

Modelled on Opacus' accountant registry: ``register(name, factory, force=False)`` and
``create(name, **params)``; an unknown name is an error that lists the valid ones. The CLI
takes its choices from these registries, so a new entry needs no edit elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from audit.errors import InvalidParameterError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory and its one-line summary."""

    name: str
    factory: Callable[..., T]
    summary: str


class Registry(Generic[T]):
    """A family of named factories."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, factory: Callable[..., T], *, summary: str = "", force: bool = False
    ) -> None:
        """Add ``factory`` under ``name``; refuse to overwrite unless ``force``."""
        if name in self._entries and not force:
            raise ValueError(f"{self.family} {name!r} is already registered")
        doc = summary or (factory.__doc__ or "").strip().splitlines()[0:1]
        if isinstance(doc, list):
            doc = doc[0] if doc else ""
        self._entries[name] = Entry(name, factory, doc)

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name``, or an error that lists the valid names."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise InvalidParameterError(
                f"Unknown {self.family} {name!r}; valid {self.family}s are: "
                + ", ".join(sorted(self._entries))
                + "."
            ) from None

    def create(self, name: str, /, **params: object) -> T:
        """Build the registered object ``name`` with ``params``."""
        return self.get(name).factory(**params)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
