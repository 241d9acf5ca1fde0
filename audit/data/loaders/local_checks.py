"""Checks of a user's local data files: the path, numeric columns, class labels, client ids.

Every check raises :class:`~audit.core.errors.InvalidParameterError` naming the parameter
that chose the bad input (``path``, ``label``, ``x_key``, ...) and the bad value, and where
it is (``at(i)`` words the position of item ``i``: "line 7", "row 3", "item 0"). The
project's own choices:

* a **path** is a file whose suffix (case-insensitive) is one the loader reads;
* a **numeric** value is an int, float or bool, or a string ``float()`` reads (surrounding
  blanks allowed); empty cells, None, NaN and infinities are refused, as are nested values;
* **class labels** are integral numbers (``3`` and ``"3.0"`` are class 3) in
  ``[0, num_classes)``; without ``num_classes`` they must be >= 0 and ``num_classes`` is
  the largest label + 1;
* **client ids** are ints (integral floats and strings of digits count as ints) or other
  non-empty strings; they are coded 0..K-1 in increasing order (ints before strings) and
  the original ids kept as ``names``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval

Position = Callable[[int], str]


def item(i: int) -> str:
    """The position of item ``i`` in an array."""
    return f"item {i}"


def local_file(path, name: str, suffixes: Sequence[str]) -> Path:
    """``path`` as an existing file ending in one of ``suffixes``, for dataset ``name``."""
    owner = f"dataset {name!r}"
    if path is None:
        raise InvalidParameterError(f"The 'path' parameter of {owner} is required. Got None instead.")
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise invalid("path", owner, "an existing file", f"{p} (missing)")
    if not p.is_file():
        raise invalid("path", owner, "a file", f"{p} (not a file)")
    if p.suffix.lower() not in suffixes:
        raise invalid("path", owner, "a file ending in " + " or ".join(suffixes), str(p))
    return p


def check_count(n: int, expected: int, param: str, owner: str, what: str) -> None:
    """Refuse ``n`` entries where the data has ``expected`` items (a ragged input)."""
    if n != expected:
        raise invalid(param, owner, f"{what} with one entry per item ({expected} items)",
                      f"{n} entries")


def check_nonempty(n: int, owner: str, where: str) -> None:
    """Refuse data without items."""
    if n == 0:
        raise invalid("path", owner, "data with at least one item", f"{where} (no items)")


def _bad_number(v) -> bool:
    if isinstance(v, str):
        v = v.strip()
    try:
        return not math.isfinite(float(v))
    except (TypeError, ValueError):
        return True


def numeric(values, param: str, owner: str, column: str, at: Position) -> np.ndarray:
    """``values`` as finite float64 (N,), or an error naming ``column`` and the first bad value."""
    try:
        arr = np.asarray(values, dtype=np.float64)
        ok = arr.ndim == 1 and bool(np.isfinite(arr).all())
    except (TypeError, ValueError):
        ok = False
    if ok:
        return arr
    values = list(values)
    bad = next((i for i, v in enumerate(values) if _bad_number(v)), None)
    if bad is None:  # every value reads alone, yet not together: nested values
        bad = next((i for i, v in enumerate(values) if np.ndim(v) != 0), 0)
    raise invalid(param, owner, f"numeric values ({column!r} holds a non-number at {at(bad)})",
                  values[bad])


def is_numeric(values) -> bool:
    """Whether :func:`numeric` accepts ``values``."""
    try:
        numeric(values, "", "", "", item)
    except InvalidParameterError:
        return False
    return True


def class_labels(values, param: str, owner: str, column: str, at: Position,
                 num_classes: int | None) -> tuple[np.ndarray, int]:
    """``(labels int64 (N,), num_classes)`` of ``values``, checked as the module docstring says."""
    y = numeric(values, param, owner, column, at)
    frac = np.flatnonzero(y != np.round(y))
    if len(frac):
        raise invalid(param, owner, f"integer class indices ({column!r} holds a fraction at {at(frac[0])})",
                      float(y[frac[0]]))
    y = y.astype(np.int64)
    if num_classes is not None:
        num_classes = check_interval("num_classes", owner, num_classes, kind=int, low=1)
    high = num_classes if num_classes is not None else max(int(y.max(initial=0)) + 1, 1)
    out = np.flatnonzero((y < 0) | (y >= high))
    if len(out):
        raise invalid(param, owner, f"class indices in [0, {high}) ({column!r} holds one out of range "
                      f"at {at(out[0])})", int(y[out[0]]))
    return y, high


def _client_id(v) -> int | str | None:
    if isinstance(v, (bool, np.bool_)) or v is None:
        return None
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return int(v) if math.isfinite(v) and float(v).is_integer() else None
    if isinstance(v, str) and v.strip():
        s = v.strip()
        return int(s) if s.lstrip("+-").isdigit() else s
    return None


def client_ids(values, param: str, owner: str, column: str,
               at: Position) -> tuple[torch.Tensor, tuple[int | str, ...]]:
    """``(codes (N,) long, names)``: each value's client coded 0..K-1, the ids in code order."""
    ids = []
    for i, v in enumerate(values):
        c = _client_id(v)
        if c is None:
            raise invalid(param, owner, f"client ids, ints or non-empty strings ({column!r} holds "
                          f"another value at {at(i)})", v)
        ids.append(c)
    names = tuple(sorted(set(ids), key=lambda c: (isinstance(c, str), c)))
    code = {c: k for k, c in enumerate(names)}
    return torch.as_tensor([code[c] for c in ids], dtype=torch.long), names
