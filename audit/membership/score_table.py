"""The tabular spelling (CSV, Parquet) of a scores file: one row per example, one column per
value, mapped to and from the arrays of the ``.npz`` form.

The format itself (which values, which shapes, what is valid) is defined and checked in
:mod:`audit.membership.score_file`; this module only moves values between columns and
arrays, and words where a value sits (``column 'ref2_logit_3', line 7``) so that an error
names the file's own column and line. It serves the score-level membership audit
(:mod:`audit.membership.score_audit`: LOSS, Yeom et al. 2018; LiRA, Carlini et al. 2022;
RMIA, Zarifzadeh et al. 2024).

Project choices: CSV goes through the standard ``csv`` module (no pandas); Parquet through
``pyarrow``, imported only when a ``.parquet`` file is used, with an error saying to install
it; an ``id`` column is ignored; the text columns ``record_id`` and ``group``
(:mod:`audit.membership.record_groups`) are kept as str, their candidate rows only
(written empty on population rows); a column no array claims is refused, naming it; CSV lines
are counted from 1 with the header on line 1, Parquet rows from 1; floats are written with
Python's shortest round-trip ``repr``, so a file written and read back holds the same
doubles.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audit.core.errors import InvalidParameterError
from audit.membership.record_groups import TEXT_ARRAYS

#: the arrays whose values sit on candidate rows; ``pop_*`` / ``ref_pop_*`` use the same
#: columns on population rows
CANDIDATE_ARRAYS = ("member", "label", "logits", "loss", "confidence", "ref_logits", "ref_loss",
                    "ref_confidence", "ref_in")


def file_error(source: str, what: str) -> InvalidParameterError:
    """The error for a bad scores file: ``Scores file 'x.csv': <what>``."""
    return InvalidParameterError(f"Scores file {source!r}: {what}")


def role(name: str) -> tuple[str, str]:
    """``(role, values)`` of an array name: ``ref_pop_logits`` -> (``ref_pop_``, ``logits``)."""
    if name == "ref_in":
        return "ref_", "in"
    for r in ("ref_pop_", "ref_", "pop_"):
        if name.startswith(r):
            return r, name[len(r):]
    return "", name


def column(name: str, m, c) -> str:
    """The column holding array ``name``'s values of reference model ``m`` and class ``c``."""
    r, base = role(name)
    col = f"logit_{c}" if base == "logits" else base
    return f"ref{m}_{col}" if r.startswith("ref_") else col


def _population_name(name: str) -> str:
    r, base = role(name)
    return "ref_pop_" + base if r == "ref_" else "pop_" + base


def read_table(path: Path, source: str, suffix: str) -> tuple[dict[str, np.ndarray], Callable]:
    """The ``.npz``-form arrays of a CSV or Parquet file, and its ``locate(name, index)``."""
    header, columns, row_name = (_csv if suffix == ".csv" else _parquet)(path, source)
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise file_error(source, f"the column(s) {', '.join(dup)} appear more than once.")
    columns.pop("id", None)
    texts = {name: columns.pop(name) for name in TEXT_ARRAYS if name in columns}
    n_rows = len(next(iter(columns.values()), ()))
    flag = columns.pop("population", np.zeros(n_rows))
    bad = np.flatnonzero((flag != 0) & (flag != 1))
    if len(bad):
        raise file_error(source, f"column 'population', {row_name(bad[0])} must be 0 or 1. "
                         f"Got {flag[bad[0]]!r} instead.")
    rows = {False: np.flatnonzero(flag == 0), True: np.flatnonzero(flag == 1)}
    refs = sorted({int(g.group(1)) for g in map(re.compile(r"ref(\d+)_").match, columns) if g})
    classes = sorted({int(g.group(1)) for g in map(re.compile(r"logit_(\d+)").fullmatch, columns) if g})
    if refs != list(range(len(refs))):
        raise file_error(source, f"reference models must be numbered 0 .. M-1. Got {refs} instead.")
    if classes != list(range(len(classes))):
        missing = min(set(range(len(classes) + 1)) - set(classes))
        raise file_error(source, f"the column 'logit_{missing}' is missing (logit columns are "
                         "numbered 0 .. C-1).")
    used: set[str] = set()

    def gather(name: str, on_population: bool) -> np.ndarray | None:
        r, base = role(name)
        models, cls = (refs if r else [None]), (classes if base == "logits" else [None])
        grid = [[column(name, m, c) for c in cls] for m in models]
        if not any(col in columns for line in grid for col in line):
            return None
        missing = [col for line in grid for col in line if col not in columns]
        if missing:
            raise file_error(source, f"the column {missing[0]!r} is missing.")
        used.update(col for line in grid for col in line)
        values = np.array([[columns[col][rows[on_population]] for col in line] for line in grid])
        values = np.moveaxis(values, 1, -1)  # (models, rows, classes)
        values = values if base == "logits" else values[..., 0]
        return values if r else values[0]

    arrays = {}
    for name in CANDIDATE_ARRAYS:
        values = gather(name, False)
        if values is None:
            continue
        arrays[name] = values
        if len(rows[True]) and name in ("member", "ref_in"):
            on_pop = gather(name, True)
            hit = np.argwhere(on_pop != 0)
            if len(hit):
                where = locate_in(name, tuple(hit[0]), refs, rows[True], row_name)
                raise file_error(source, f"{where} must be 0 on a population row (no model trained "
                                 f"on it). Got {on_pop[tuple(hit[0])]!r} instead.")
        elif len(rows[True]):
            arrays[_population_name(name)] = gather(name, True)
    for name, values in texts.items():  # population rows' ids and groups are ignored
        arrays[name] = values[rows[False]]
    unknown = sorted(set(columns) - used)
    if unknown:
        raise file_error(source, f"unknown column(s) {', '.join(unknown)} (the format is in "
                         "audit/membership/score_file.py and docs/membership.md).")

    def locate(name: str, idx: tuple | None) -> str:
        if idx is None:
            return f"the column {column(name, '{m}', '{c}')!r}"
        return locate_in(name, idx, refs, rows[role(name)[0] in ("pop_", "ref_pop_")], row_name)

    return arrays, locate


def locate_in(name: str, idx: tuple, refs: list[int], rows: np.ndarray, row_name: Callable) -> str:
    """``column 'X', line L`` of the value at ``idx`` of array ``name``."""
    r, base = role(name)
    m = refs[idx[0]] if r.startswith("ref_") else None
    n = idx[1] if r.startswith("ref_") else idx[0]
    return f"column {column(name, m, idx[-1] if base == 'logits' else None)!r}, {row_name(rows[n])}"


def _csv(path: Path, source: str):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise file_error(source, f"not a readable CSV file ({exc}).") from None
    if not lines:
        raise file_error(source, "the file is empty (it needs a header and one row per example).")
    header, body = [h.strip() for h in lines[0]], lines[1:]
    for i, line in enumerate(body):
        if len(line) != len(header):
            raise file_error(source, f"line {i + 2} has {len(line)} fields, the header {len(header)}.")
    columns = {}
    for j, name in enumerate(header):
        if name == "id":
            continue
        if name in TEXT_ARRAYS:
            columns[name] = np.array([line[j] for line in body], dtype=str)
            continue
        values = np.empty(len(body))
        for i, line in enumerate(body):
            try:
                values[i] = float(line[j])
            except ValueError:
                raise file_error(source, f"column {name!r}, line {i + 2} must be a number. Got "
                                 f"{line[j]!r} instead.") from None
        columns[name] = values
    return header, columns, lambda i: f"line {i + 2}"


def pyarrow_parquet(source: str):
    """``pyarrow.parquet``, or the error saying to install pyarrow."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise file_error(source, "Parquet needs pyarrow, which is not installed: run `python3 -m "
                         "pip install pyarrow`, or write the scores as .csv or .npz.") from None
    return pq


def _parquet(path: Path, source: str):
    pq = pyarrow_parquet(source)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow has its own error types for a corrupt file
        raise file_error(source, f"not a readable Parquet file ({exc}).") from None
    columns = {}
    for name in table.column_names:
        raw = table.column(name).to_pylist()
        if name in TEXT_ARRAYS:
            bad = [i for i, v in enumerate(raw) if isinstance(v, float) or not isinstance(v, (str, int))]
            if bad:
                raise file_error(source, f"column {name!r}, row {bad[0] + 1} must be a str. Got "
                                 f"{raw[bad[0]]!r} instead.")
            columns[name] = np.array([str(v) for v in raw], dtype=str)
            continue
        bad = [i for i, v in enumerate(raw) if not isinstance(v, (int, float))]
        if bad and name != "id":
            raise file_error(source, f"column {name!r}, row {bad[0] + 1} must be a number. Got "
                             f"{raw[bad[0]]!r} instead.")
        columns[name] = np.zeros(len(raw)) if bad else np.asarray(raw, dtype=np.float64)
    return list(table.column_names), columns, lambda i: f"row {i + 1}"


def table_of(arrays: dict[str, np.ndarray]) -> dict[str, list]:
    """The columns (name -> Python ints or floats, candidate then population rows) of valid
    ``arrays``."""
    pop = next((len(v) for k, v in arrays.items() if k.startswith("pop_")), 0)
    table: dict[str, list] = {}
    for name in CANDIDATE_ARRAYS:
        if name not in arrays:
            continue
        r, base = role(name)
        on_pop = arrays.get(_population_name(name))
        for m in range(len(arrays[name])) if r else [None]:
            values = arrays[name][m] if r else arrays[name]
            rest = None if on_pop is None else (on_pop[m] if r else on_pop)
            for c in range(values.shape[-1]) if base == "logits" else [None]:
                tail = [0] * pop if rest is None else list(rest[:, c] if c is not None else rest)
                cast = int if base in ("member", "in", "label") else float
                col = values[:, c] if c is not None else values
                table[column(name, m, c)] = [cast(v) for v in col] + [cast(v) for v in tail]
    for name in TEXT_ARRAYS:
        if name in arrays:
            table[name] = [str(v) for v in arrays[name]] + [""] * pop
    if pop:
        table["population"] = [0] * len(arrays["member"]) + [1] * pop
    return table


def table_bytes(arrays: dict[str, np.ndarray], suffix: str, source: str) -> bytes:
    """The ``.csv`` or ``.parquet`` file of ``arrays``."""
    table = table_of(arrays)
    if suffix == ".csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(table)
        writer.writerows(zip(*([v if isinstance(v, str) else repr(v) for v in col]
                               for col in table.values())))
        return text.getvalue().encode()
    pq = pyarrow_parquet(source)
    import pyarrow as pa

    buf = io.BytesIO()
    pq.write_table(pa.table({k: v if k in TEXT_ARRAYS else np.asarray(v, dtype=np.float64)
                             for k, v in table.items()}), buf)
    return buf.getvalue()
