"""The user's own code, named on the command line or in a config file: ``"path/to/file.py:name"``
or ``"package.module:name"``.

Every place that takes a user piece (a model builder, a defense class, a loss function, a
local-training function, an Opacus run) loads it here, so the rules and the error messages
are the same everywhere:

* ``file.py:name``: the file is executed as a module of its own (named after its resolved
  path, registered in :data:`sys.modules` so dataclasses and ``torch.func`` see a real
  module), once per process; ``package.module:name``: imported as usual (the package must be
  importable, e.g. installed or on ``PYTHONPATH``).
* A spec without ``:``, a missing file, a module that fails to import (its first error line
  is shown), a missing name, or an object of the wrong kind is an
  :class:`~audit.core.errors.InvalidParameterError` naming the parameter and the spec.
* Nothing is unpickled: user code is Python source the user points at, run as such.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from audit.core.errors import InvalidParameterError

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def is_user_spec(text: object) -> bool:
    """Whether ``text`` names user code (``file.py:name`` or ``module:name``) rather than a
    registered entry: it holds a ``:`` (no registered name does)."""
    return isinstance(text, str) and ":" in text


def _bad(parameter: str, owner: str, spec: str, why: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"The {parameter!r} parameter of {owner} must be 'path/to/file.py:name' or "
        f"'package.module:name' naming {why}. Got {spec!r} instead.")


def _file_module(path: Path, parameter: str, owner: str, spec: str) -> ModuleType:
    resolved = path.resolve()
    name = "fedaudit_user_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, resolved)
    if loader_spec is None or loader_spec.loader is None:
        raise _bad(parameter, owner, spec, "a Python source file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        first = (str(exc).splitlines() or [""])[0]
        raise InvalidParameterError(
            f"The {parameter!r} parameter of {owner}: {str(path)!r} failed to import "
            f"({type(exc).__name__}: {first}). Got {spec!r}.") from None
    return module


def load_object(spec: str, *, parameter: str, owner: str) -> Any:
    """The object ``spec`` names (``file.py:name`` or ``module:name``; ``name`` may be dotted)."""
    if not isinstance(spec, str) or ":" not in spec:
        raise _bad(parameter, owner, str(spec), "an object")
    where, _, attr = spec.rpartition(":")
    if not where or not _NAME.match(attr):
        raise _bad(parameter, owner, spec, "an object (the part after ':' is a Python name)")
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser()
        if not path.is_file():
            raise _bad(parameter, owner, spec, f"an existing file ({where!r} does not exist)")
        module = _file_module(path, parameter, owner, spec)
    else:
        if not _MODULE.match(where):
            raise _bad(parameter, owner, spec, "an importable module")
        try:
            module = importlib.import_module(where)
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise InvalidParameterError(
                f"The {parameter!r} parameter of {owner}: module {where!r} failed to import "
                f"({type(exc).__name__}: {first}). Got {spec!r}.") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidParameterError(
                f"The {parameter!r} parameter of {owner}: {where!r} has no {attr!r}. "
                f"Got {spec!r} instead.")
        obj = getattr(obj, part)
    return obj


def load_callable(spec: str, *, parameter: str, owner: str) -> Callable[..., Any]:
    """:func:`load_object`, which must be callable (a function or a class)."""
    obj = load_object(spec, parameter=parameter, owner=owner)
    if not callable(obj):
        raise InvalidParameterError(
            f"The {parameter!r} parameter of {owner} must name a callable. Got {spec!r}, "
            f"a {type(obj).__name__}, instead.")
    return obj
