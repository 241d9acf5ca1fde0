"""The names of a membership audit's records and their groups, for the exposure analysis
(:mod:`audit.membership.exposure`; per-record and per-group vulnerability after Carlini
et al. 2022 and Aerni et al. 2024).

A record's id is how the report names it (never its content): the scores file's
``record_id`` column (or ``.npz`` array), else its position among the candidate rows
(``"0"``, ``"1"``, ...; the built-in audit uses the dataset index). A record's group is
the user's name for it: the scores file's ``group`` column, or a groups file given apart
(``fedaudit mia --groups FILE``), else its class when the true labels are known.

A groups file is a ``.csv`` with a header holding exactly ``record_id`` and ``group``, one
row per record, or a ``.json`` object ``{"record_id": "group", ...}``.

Project choices: ids and group names are non-empty str, surrounding whitespace dropped (an
integer id in an ``.npz`` is written as its decimal str; a group must be a str); ids are
unique among the candidates; population rows' ids and groups are ignored (they are no
candidates); every candidate needs a group in a groups file, while a groups file may name
records the scores file lacks (a groups file for a whole data set serves a subset's
scores); a group from the scores file and a groups file together are refused; class
groups are named ``class c``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from audit.core.errors import InvalidParameterError

#: the scores file's optional text columns (``.npz`` arrays) of the exposure analysis
TEXT_ARRAYS = ("record_id", "group")


def check_text(source: str, name: str, values, locate: Callable) -> np.ndarray:
    """``values`` of the text array ``name`` of scores file ``source`` as a str array.

    ``locate(name, index)`` words where a value sits; errors name the first bad one.
    """
    raw = np.asarray(values)
    if raw.dtype.kind in "iu" and name == "record_id":
        raw = raw.astype(str)
    if raw.dtype.kind != "U":
        raise InvalidParameterError(f"Scores file {source!r}: {locate(name, None)} must hold "
                                    f"strings. Got dtype {raw.dtype} instead.")
    texts = [str(v).strip() for v in raw]
    for i, v in enumerate(texts):
        if not v:
            raise InvalidParameterError(f"Scores file {source!r}: {locate(name, (i,))} must be "
                                        f"a non-empty str. Got {str(raw[i])!r} instead.")
    if name == "record_id":
        seen: dict[str, int] = {}
        for i, v in enumerate(texts):
            if v in seen:
                raise InvalidParameterError(
                    f"Scores file {source!r}: {locate(name, (i,))} must be a record id unique "
                    f"among the candidates. Got {v!r} again (first at "
                    f"{locate(name, (seen[v],))}) instead.")
            seen[v] = i
    return np.array(texts, dtype=str)


def default_ids(n: int) -> list[str]:
    """The ids of records without a ``record_id``: their positions, as str."""
    return [str(i) for i in range(n)]


def class_groups(labels) -> list[str]:
    """``class c`` for each true label ``c``."""
    return [f"class {int(c)}" for c in np.asarray(labels).reshape(-1)]


def _groups_error(source: str, what: str) -> InvalidParameterError:
    return InvalidParameterError(f"Groups file {source!r}: {what}")


def _pair(source: str, where: str, record, group) -> tuple[str, str]:
    for label, value in (("record_id", record), ("group", group)):
        if not isinstance(value, str) or not value.strip():
            raise _groups_error(source, f"{where}: the {label} must be a non-empty str. Got "
                                f"{value!r} instead.")
    return record.strip(), group.strip()


def read_groups(path: str | Path) -> dict[str, str]:
    """The record id -> group name mapping of groups file ``path`` (``.csv`` or ``.json``)."""
    path, source = Path(path), str(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise _groups_error(source, f"the file name must end in .csv or .json. Got "
                            f"{suffix or 'no suffix'!r} instead.")
    if not path.is_file():
        raise _groups_error(source, "no such file.")
    pairs: list[tuple[str, str, str]] = []
    try:
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise _groups_error(source, "must hold a JSON object {record_id: group}. Got "
                                    f"a {type(data).__name__} instead.")
            pairs = [(f"key {k!r}", k, v) for k, v in data.items()]
        else:
            with open(path, newline="", encoding="utf-8") as f:
                lines = list(csv.reader(f))
            header = [h.strip() for h in lines[0]] if lines else []
            if sorted(header) != ["group", "record_id"]:
                raise _groups_error(source, "the header must be the columns record_id and group. "
                                    f"Got {header} instead.")
            r, g = header.index("record_id"), header.index("group")
            for i, line in enumerate(lines[1:], start=2):
                if len(line) != 2:
                    raise _groups_error(source, f"line {i} has {len(line)} fields, the header 2.")
                pairs.append((f"line {i}", line[r], line[g]))
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise _groups_error(source, f"not a readable {suffix} file ({exc}).") from None
    mapping: dict[str, str] = {}
    for where, record, group in pairs:
        record, group = _pair(source, where, record, group)
        if record in mapping:
            raise _groups_error(source, f"{where}: the record id {record!r} appears more than once.")
        mapping[record] = group
    return mapping


def _mapping(given) -> tuple[dict[str, str], str]:
    if isinstance(given, Mapping):
        source = "<groups mapping>"
        pairs = [_pair(source, f"key {k!r}", k, v) for k, v in given.items()]
        return dict(pairs), source
    return read_groups(given), str(given)


def resolve_groups(n: int, *, record_ids=None, file_groups=None, labels=None, given=None,
                   ids_from: str | None = None) -> tuple[list[str], list[str] | None, str, str]:
    """``(ids, groups, group_source, ids_from)`` of ``n`` candidates.

    ``record_ids`` / ``file_groups`` come from the scores file (or ``None``), ``labels`` are
    the true classes (or ``None``), ``given`` a groups file path or a mapping (or
    ``None``); ``ids_from`` words where explicit ``record_ids`` come from.
    """
    if record_ids is None:
        ids, ids_from = default_ids(n), "the candidates' positions among the candidate rows"
    else:
        ids, ids_from = [str(r) for r in record_ids], ids_from or "the record_id column"
    if given is not None:
        mapping, source = _mapping(given)
        if file_groups is not None:
            raise _groups_error(source, "the scores file has its own group column; give the "
                                "groups once. Got both instead.")
        return ids, assign_groups(ids, mapping, source), "user", ids_from
    if file_groups is not None:
        return ids, [str(g) for g in file_groups], "user", ids_from
    if labels is not None:
        return ids, class_groups(labels), "class", ids_from
    return ids, None, "none", ids_from


def assign_groups(record_ids, mapping: Mapping[str, str], source: str) -> list[str]:
    """Each record's group from ``mapping``; a record without one is an error naming it."""
    out = []
    for i, record in enumerate(record_ids):
        if record not in mapping:
            raise _groups_error(source, f"no group for the record id {record!r} (candidate {i} "
                                "of the scores file); every candidate needs one.")
        out.append(mapping[record])
    return out
