"""The members file of a membership audit of the user's own target (``fedaudit mia
--target-weights W --members FILE``): which items of the dataset the target trained on.

Every item of the dataset is a candidate, in the dataset's order; the file gives one 0/1
value per item, 1 where the item was in the target's training data (the ground truth of
the membership game of Carlini et al. 2022, "Membership inference attacks from first
principles", and of Yeom et al. 2018's LOSS attack).

* ``.npz`` (read with ``allow_pickle=False``): an array ``member`` of shape (N,), 0/1 or
  bool. Other arrays are ignored, so the dataset's own ``.npz`` (``x``, ``y`` and a
  ``member`` array beside them) can be the members file too.
* ``.csv`` (the standard ``csv`` module): a header row with a ``member`` column, then one
  row per item; an optional ``id`` column is ignored, any other column is refused (a
  misspelt ``member`` would otherwise go unnoticed).

Project choices: the number of values must equal the dataset's items; each side (members,
non-members) needs at least :data:`~audit.membership.score_file.MIN_PER_SIDE` items, as a
scores file; a bad value is named by its line (CSV, header on line 1) or index (``.npz``).
Every problem is an :class:`~audit.core.errors.InvalidParameterError` naming the file.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from audit.core.errors import InvalidParameterError
from audit.membership.score_file import MIN_PER_SIDE

SUFFIXES = (".npz", ".csv")


def _error(path: str, what: str) -> InvalidParameterError:
    return InvalidParameterError(f"Members file {path!r}: {what}")


def _from_npz(path: Path, source: str) -> tuple[np.ndarray, str]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "member" not in archive.files:
                raise _error(source, "must hold an array 'member' (one 0/1 value per dataset "
                             f"item). Arrays: {', '.join(archive.files) or 'none'}.")
            values = archive["member"]
    except InvalidParameterError:
        raise
    except (OSError, ValueError, EOFError, AttributeError, zipfile.BadZipFile) as exc:
        raise _error(source, f"not a readable .npz archive ({exc}).") from None
    if values.ndim != 1:
        raise _error(source, f"the array 'member' must have shape (N,). Got {values.shape} instead.")
    if values.dtype.kind not in "biuf":
        raise _error(source, f"the array 'member' must hold numbers. Got dtype {values.dtype} instead.")
    return values.astype(np.float64), "index {}"


def _from_csv(path: Path, source: str) -> tuple[np.ndarray, str]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _error(source, f"not a readable CSV file ({exc}).") from None
    header = [h.strip() for h in lines[0]] if lines else []
    if "member" not in header:
        raise _error(source, "the header must name a 'member' column. Got "
                     f"{', '.join(map(repr, header)) or 'no header'} instead.")
    unknown = [h for h in header if h not in ("member", "id")]
    if unknown or header.count("member") > 1:
        raise _error(source, f"the columns must be 'member' and an optional 'id'. Got "
                     f"{', '.join(map(repr, header))} instead.")
    j, values = header.index("member"), []
    for i, line in enumerate(lines[1:]):
        if len(line) != len(header):
            raise _error(source, f"line {i + 2} has {len(line)} fields, the header {len(header)}.")
        try:
            values.append(float(line[j]))
        except ValueError:
            raise _error(source, f"column 'member', line {i + 2} must be 0 or 1. Got "
                         f"{line[j]!r} instead.") from None
    return np.asarray(values, dtype=np.float64), "column 'member', line {}"


def read_members(path: str | Path, num_items: int, dataset: str) -> np.ndarray:
    """The (``num_items``,) bool membership of the members file ``path`` (``.npz`` or ``.csv``),
    checked against the dataset ``dataset`` (named in errors)."""
    source, p = str(path), Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise _error(source, f"the file name must end in {' or '.join(SUFFIXES)}. Got "
                     f"{suffix or 'no suffix'!r} instead.")
    if not p.is_file():
        raise _error(source, "no such file.")
    values, where = (_from_npz if suffix == ".npz" else _from_csv)(p, source)
    first = 0 if suffix == ".npz" else 2
    bad = np.flatnonzero((values != 0) & (values != 1))
    if len(bad):
        raise _error(source, f"{where.format(bad[0] + first)} must be 0 or 1. Got "
                     f"{float(values[bad[0]])!r} instead.")
    if len(values) != num_items:
        raise _error(source, f"must give one value per item of dataset {dataset!r} ({num_items} "
                     f"items). Got {len(values)} values instead.")
    member = values.astype(bool)
    inside = int(member.sum())
    if min(inside, num_items - inside) < MIN_PER_SIDE:
        raise _error(source, f"must mark at least {MIN_PER_SIDE} members and {MIN_PER_SIDE} "
                     f"non-members. Got {inside} members and {num_items - inside} non-members instead.")
    return member
