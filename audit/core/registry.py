"""Name -> factory registries, one per family, and the one loader that fills them.

Modelled on Opacus' accountant registry: ``register(name, factory, force=False)`` and
``create(name, **params)``; an unknown name is an error that lists the valid ones. The CLI
takes its choices from these registries, so a new entry needs no edit elsewhere.

**Plug-ins.** A registry of a plug-in family (defenses, attacks, datasets, models, threat
models) is filled, on its first lookup, by the Python entry points of its group
(``fedaudit.defenses``, ``fedaudit.attacks``, ``fedaudit.datasets``, ``fedaudit.models``,
``fedaudit.threat_models``). Each entry point names a function ``register(registry)``
that registers its package's entries; fedaudit's own are declared the same way in its
``pyproject.toml`` (``builtin = "defenses.catalog:register"``, ...), so another package
plugs in by declaring an entry point in its own metadata, without editing ours. The
built-in entry point loads first, then the others sorted by name; a plug-in that fails to
load, or registers a name already taken, is an error naming the entry point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Generic, TypeVar

from audit.core.errors import InvalidParameterError

T = TypeVar("T")

#: the entry point of fedaudit's own entries in every group
BUILTIN_ENTRY_POINT = "builtin"


class PluginError(InvalidParameterError):
    """A plug-in (entry point) could not be loaded or registered an entry twice (the CLI
    reports it as one line ``Error: ...``, exit code 2)."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory and its one-line summary."""

    name: str
    factory: Callable[..., T]
    summary: str


class Registry(Generic[T]):
    """A family of named factories; with ``group``, filled from that entry-point group."""

    def __init__(self, family: str, *, group: str | None = None) -> None:
        self.family = family
        self.group = group
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = group is None
        self._loading: str | None = None

    def register(
        self, name: str, factory: Callable[..., T], *, summary: str = "", force: bool = False
    ) -> None:
        """Add ``factory`` under ``name``; refuse to overwrite unless ``force``."""
        if name in self._entries and not force:
            origin = f" (entry point {self._loading!r} of group {self.group!r})" if self._loading else ""
            raise ValueError(f"{self.family} {name!r} is already registered{origin}")
        doc = summary or (factory.__doc__ or "").strip().splitlines()[0:1]
        if isinstance(doc, list):
            doc = doc[0] if doc else ""
        self._entries[name] = Entry(name, factory, doc)

    def load_plugins(self) -> None:
        """Run every entry point of this registry's group once (built-in first)."""
        if self._loaded:
            return
        self._loaded = True
        found = list(metadata.entry_points(group=self.group))
        if not any(ep.name == BUILTIN_ENTRY_POINT for ep in found):
            raise PluginError(
                f"No entry point {BUILTIN_ENTRY_POINT!r} in group {self.group!r}: fedaudit's "
                "package metadata is missing. Install it (python3 -m pip install -e .).")
        seen: set[str] = set()
        for ep in sorted(found, key=lambda e: (e.name != BUILTIN_ENTRY_POINT, e.name, e.value)):
            if (ep.name, ep.value) in seen:  # the same distribution found twice on the path
                continue
            seen.add((ep.name, ep.value))
            self._loading = ep.name
            try:
                hook = ep.load()
                hook(self)
            except Exception as exc:
                raise PluginError(
                    f"fedaudit plug-in {ep.name!r} ({ep.value}) of group {self.group!r} "
                    f"failed: {type(exc).__name__}: {exc}") from exc
            finally:
                self._loading = None

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name``, or an error that lists the valid names."""
        self.load_plugins()
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
        self.load_plugins()
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        self.load_plugins()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __contains__(self, name: object) -> bool:
        self.load_plugins()
        return name in self._entries
