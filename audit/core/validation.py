"""Declarative parameter checks (after scikit-learn's ``_param_validation``).

Each check returns the validated (and possibly converted) value or raises
:class:`~audit.core.errors.InvalidParameterError` naming the parameter and the bad value.
NaN fails every numeric interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from audit.core.errors import InvalidParameterError, invalid


def _as_number(name: str, owner: str, value: Any, kind: type) -> float | int:
    if isinstance(value, bool):
        raise invalid(name, owner, f"a {kind.__name__}", value)
    if isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            raise invalid(name, owner, f"a {kind.__name__}", value) from None
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise invalid(name, owner, "an int", value)
        return value
    if not isinstance(value, (int, float)):
        raise invalid(name, owner, "a float", value)
    return float(value)


def check_interval(
    name: str,
    owner: str,
    value: Any,
    *,
    kind: type = float,
    low: float | None = None,
    high: float | None = None,
    closed: str = "both",
) -> Any:
    """Check that ``value`` is a ``kind`` inside the interval (``closed``: both|left|right|neither)."""
    v = _as_number(name, owner, value, kind)
    lo_open = closed in ("right", "neither")
    hi_open = closed in ("left", "neither")
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    desc = (
        f"a {kind.__name__} in the range {left}{'-inf' if low is None else low}, "
        f"{'inf' if high is None else high}{right}"
    )
    if isinstance(v, float) and math.isnan(v):
        raise invalid(name, owner, desc, value)
    if low is not None and (v < low or (lo_open and v == low)):
        raise invalid(name, owner, desc, value)
    if high is not None and (v > high or (hi_open and v == high)):
        raise invalid(name, owner, desc, value)
    return v


def check_positive(name: str, owner: str, value: Any, *, kind: type = float) -> Any:
    """Strictly positive number."""
    return check_interval(name, owner, value, kind=kind, low=0, closed="right")


def check_nonnegative(name: str, owner: str, value: Any, *, kind: type = float) -> Any:
    """Number >= 0."""
    return check_interval(name, owner, value, kind=kind, low=0, closed="both")


def check_options(name: str, owner: str, value: Any, options: Iterable[str]) -> str:
    """One string among ``options``."""
    opts = list(options)
    if not isinstance(value, str) or value not in opts:
        raise invalid(name, owner, "a str among {" + ", ".join(repr(o) for o in opts) + "}", value)
    return value


def check_bool(name: str, owner: str, value: Any) -> bool:
    """A boolean, also accepting the strings true/false/1/0/yes/no from the CLI."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise invalid(name, owner, "a bool", value)


def check_known_keys(params: dict[str, Any], allowed: Iterable[str], owner: str) -> None:
    """Reject keys that ``owner`` does not accept, naming the first unknown one."""
    allowed = list(allowed)
    for key in params:
        if key not in allowed:
            raise InvalidParameterError(
                f"Unknown parameter {key!r} for {owner}; valid parameters are: "
                + (", ".join(sorted(allowed)) or "none")
                + "."
            )


def check_table_keys(data: Any, allowed: Iterable[str], where: str, *, prefix: str = "",
                     valid: Iterable[str] | None = None) -> None:
    """Reject a settings table (from a TOML/YAML file) that is not a table or has a key not in
    ``allowed``, naming the key (after ``prefix``, e.g. ``base.``), ``where`` it is (e.g.
    ``sweep spec 'x.toml'``) and the ``valid`` keys (default: ``allowed``)."""
    if not isinstance(data, Mapping):
        raise InvalidParameterError(
            f"The {where} must hold a table of settings. Got {type(data).__name__} instead.")
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            raise InvalidParameterError(
                f"Unknown key {prefix + str(key)!r} in {where}; valid keys are: "
                + ", ".join(allowed if valid is None else valid) + ".")


def strict_factory(cls):
    """A factory for ``cls`` that rejects unknown keyword parameters by name."""
    import inspect

    allowed = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]

    def factory(**params: Any):
        check_known_keys(params, allowed, cls.name)
        return cls(**params)

    factory.__doc__ = cls.__doc__
    return factory


def check_noise_or_target(owner: str, target_epsilon: Any, noise_multiplier: Any, *,
                          zero_noise: bool = False) -> tuple[float | None, float | None]:
    """``(target_epsilon, noise_multiplier)`` of a DP defense: a given noise multiplier
    wins (positive, or >= 0 with ``zero_noise``) and drops the target; otherwise the target
    must be positive. Neither is an error."""
    if noise_multiplier is not None:
        if zero_noise:
            return None, check_interval("noise_multiplier", owner, noise_multiplier, low=0)
        return None, check_positive("noise_multiplier", owner, noise_multiplier)
    if target_epsilon is None:
        raise InvalidParameterError(
            f"Defense {owner!r} needs 'target_epsilon' or 'noise_multiplier'. Got neither instead.")
    return check_positive("target_epsilon", owner, target_epsilon), None
