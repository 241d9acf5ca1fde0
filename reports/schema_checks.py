"""The primitive checks of the report validators (:mod:`reports.schema` and the modules
that check one part of a report, e.g. :mod:`reports.exposure_schema`): each raises an
:class:`InvalidParameterError` naming the JSON path, the constraint and the value."""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from audit.core.errors import InvalidParameterError

_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(path: str, constraint: str, value: Any) -> InvalidParameterError:
    return InvalidParameterError(
        f"Invalid report: {path!r} must be {constraint}. Got {_short(value)} instead."
    )


def _key(obj: dict, path: str, key: str) -> Any:
    if key not in obj:
        raise InvalidParameterError(
            f"Invalid report: the required key {_join(path, key)!r} is missing."
        )
    return obj[key]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _dict(v: Any, path: str) -> dict:
    if not isinstance(v, dict):
        raise _fail(path, "an object (dict)", v)
    return v


def _str(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise _fail(path, "a str", v)
    return v


def _opt_str(v: Any, path: str) -> None:
    if v is not None and not isinstance(v, str):
        raise _fail(path, "a str or null", v)


def _bool(v: Any, path: str) -> None:
    if not isinstance(v, bool):
        raise _fail(path, "a bool", v)


def _int(v: Any, path: str, low: int | None = None) -> None:
    constraint = "an int" if low is None else f"an int >= {low}"
    if isinstance(v, bool) or not isinstance(v, int) or (low is not None and v < low):
        raise _fail(path, constraint, v)


def _opt_int(v: Any, path: str, low: int = 0) -> None:
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
        raise _fail(path, f"an int >= {low} or null", v)


def _float(v: Any, path: str, *, nullable: bool = False, low: float | None = None,
           high: float | None = None) -> None:
    if v is None and nullable:
        return
    desc = "a finite number"
    if low is not None and high is not None:
        desc = f"a number in the range [{low}, {high}]"
    elif low is not None:
        desc = f"a number >= {low}"
    if nullable:
        desc += " or null"
    try:  # an int beyond the float range is valid JSON but no finite double
        finite = _is_number(v) and math.isfinite(v)
    except OverflowError:
        finite = False
    if not finite:
        raise _fail(path, desc, v)
    if (low is not None and v < low) or (high is not None and v > high):
        raise _fail(path, desc, v)


def _options(v: Any, path: str, options: tuple[str, ...], *, nullable: bool = False) -> None:
    if v is None and nullable:
        return
    if not isinstance(v, str) or v not in options:
        desc = "one of {" + ", ".join(repr(o) for o in options) + "}"
        raise _fail(path, desc + (" or null" if nullable else ""), v)


def _str_list(v: Any, path: str) -> None:
    if not isinstance(v, list):
        raise _fail(path, "a list of str", v)
    for i, item in enumerate(v):
        _str(item, f"{path}[{i}]")


def _image(image: Any, path: str) -> None:
    """An optional {png_base64, caption} object (a finding's or a part's plot)."""
    if image is None:
        return
    _dict(image, path)
    data = _str(_key(image, path, "png_base64"), _join(path, "png_base64"))
    try:
        if not _B64.fullmatch(data):
            raise ValueError
        base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error):
        raise _fail(_join(path, "png_base64"), "base64-encoded PNG data", data) from None
    _str(_key(image, path, "caption"), _join(path, "caption"))
