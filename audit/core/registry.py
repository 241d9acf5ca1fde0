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

**The user's own code.** A name holding ``:`` is not looked up but loaded
(:mod:`audit.core.user_code`): ``--defense my_defense.py:TopK`` or
``--model my_package.nets:build``. A class with a ``from_params`` classmethod is built
through it (fedaudit's convention), any other callable is called with the parameters; the
result must be of the registry's ``kind`` (a :class:`~audit.core.defense.Defense`, an
``nn.Module``, ...), otherwise an error names the spec and what it returned. User entries
are not listed by ``fedaudit list``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Generic, TypeVar

from audit.core.errors import InvalidParameterError
from audit.core.user_code import is_user_spec, load_callable

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


def _signature(fn: Callable[..., object]) -> inspect.Signature:
    """``fn``'s signature, or ``(**params)`` when it has none to read."""
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return inspect.Signature([inspect.Parameter("params", inspect.Parameter.VAR_KEYWORD)])


class Registry(Generic[T]):
    """A family of named factories; with ``group``, filled from that entry-point group."""

    def __init__(self, family: str, *, group: str | None = None, kind: type | None = None) -> None:
        self.family = family
        self.group = group
        #: what a user's factory must return (None: anything)
        self.kind = kind
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

    def _user_entry(self, spec: str) -> Entry[T]:
        """An entry for the user's ``file.py:name`` / ``module:name`` (not registered)."""
        factory = load_callable(spec, parameter=self.family, owner=f"the {self.family} option")
        build = getattr(factory, "from_params", factory)
        kind = self.kind

        def create(**params: object) -> T:
            try:
                made = build(**params)
            except InvalidParameterError:
                raise
            except Exception as exc:
                first = (str(exc).splitlines() or [""])[0]
                raise InvalidParameterError(
                    f"The {self.family!r} parameter: {spec!r} failed to build with parameters "
                    f"{dict(params)!r} ({type(exc).__name__}: {first}).") from None
            if kind is not None and not isinstance(made, kind):
                raise InvalidParameterError(
                    f"The {self.family!r} parameter: {spec!r} must give a {kind.__name__}. "
                    f"Got a {type(made).__name__} instead.")
            return made

        create.__signature__ = _signature(build)  # type: ignore[attr-defined]
        doc = (getattr(factory, "__doc__", None) or "").strip().splitlines()
        return Entry(spec, create, doc[0] if doc else f"the user's {self.family}")

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name``, or an error that lists the valid names. A name with ``:``
        is the user's own code (see the module docstring)."""
        if is_user_spec(name):
            return self._user_entry(name)
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
