"""``table``: a user's CSV or Parquet table of feature columns, a label column and clients.

``label=COLUMN`` names the class column, ``features=a,b,c`` the feature columns (default:
every other numeric column), ``client_column=COLUMN`` each row's client (see
:mod:`audit.data.loaders.columns`). The project's own choices:

* ``.csv`` and ``.tsv`` files are read with the standard library's :mod:`csv` (no pandas):
  UTF-8 (a byte-order mark is skipped), the first row is the header, the delimiter is
  ``,`` for ``.csv`` and a tab for ``.tsv`` unless ``delimiter`` says otherwise; blank lines
  are skipped; a row with another number of fields than the header is an error naming its
  line; header names are stripped of blanks and must be distinct and non-empty;
* ``.parquet`` / ``.pq`` files are read with pyarrow (the optional ``tables`` extra); a
  missing pyarrow is an error saying how to install it;
* features are scaled per ``scale`` (:mod:`audit.data.loaders.local_arrays`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from audit.core.errors import InvalidParameterError, invalid
from audit.data.dataset import ImageDataset
from audit.data.loaders.columns import columns_dataset
from audit.data.loaders.local_checks import Position, check_nonempty, local_file

_NAME = "table"
_OWNER = f"dataset {_NAME!r}"
CSV_SUFFIXES = (".csv", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
TABLES_EXTRA = "pip install 'fedaudit[tables]'"


def _header(row: list[str], file: Path) -> list[str]:
    names = [h.strip() for h in row]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise invalid("path", _OWNER, "a table whose header names distinct, non-empty columns",
                      f"{file} (header: {', '.join(names)})")
    return names


def read_csv(file: Path, delimiter: str | None) -> tuple[dict[str, list[str]], Position]:
    """The columns of a CSV file (name -> the cells of each row) and how to word a row."""
    if delimiter is None:
        delimiter = "\t" if file.suffix.lower() == ".tsv" else ","
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise invalid("delimiter", _OWNER, "one character", delimiter)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with open(file, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            first = next(reader, None)
            if first is None:
                check_nonempty(0, _OWNER, repr(str(file)))
            names = _header(first, file)
            for row in reader:
                if not row:
                    continue
                if len(row) != len(names):
                    raise invalid("path", _OWNER, f"a table whose rows all have the header's {len(names)} "
                                  "fields", f"{file} (line {reader.line_num} has {len(row)})")
                rows.append(row)
                lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise invalid("path", _OWNER, "a UTF-8 CSV file", f"{file} ({exc})") from None
    columns = {n: [r[j] for r in rows] for j, n in enumerate(names)}
    return columns, lambda i: f"line {lines[i]}"


def read_parquet(file: Path) -> tuple[dict[str, list], Position]:
    """The columns of a Parquet file (name -> the value of each row) and how to word a row."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidParameterError(
            f"Dataset {_NAME!r} reads Parquet files with pyarrow, an optional extra: {TABLES_EXTRA}. "
            "Got no 'pyarrow' package instead.") from None
    try:
        t = pq.read_table(file)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise invalid("path", _OWNER, "a Parquet file", f"{file} ({exc})") from None
    return {n: t.column(n).to_pylist() for n in t.column_names}, lambda i: f"row {i}"


def table(*, path=None, label: str | None = None, features: str | Sequence[str] | None = None,
          client_column: str | None = None, scale: str = "minmax", num_classes: int | None = None,
          delimiter: str | None = None, limit: int | None = None) -> ImageDataset:
    """A local CSV or Parquet table: feature columns, a ``label`` column, optional clients."""
    file = local_file(path, _NAME, CSV_SUFFIXES + PARQUET_SUFFIXES)
    if file.suffix.lower() in PARQUET_SUFFIXES:
        if delimiter is not None:
            raise invalid("delimiter", _OWNER, "None for a Parquet file", delimiter)
        columns, at = read_parquet(file)
        kind = "Parquet"
    else:
        columns, at = read_csv(file, delimiter)
        kind = "CSV"
    return columns_dataset(_NAME, columns, at, where=repr(str(file)), source=f"local {kind} table {file}",
                           label=label, features=features, client_column=client_column, scale=scale,
                           num_classes=num_classes, limit=limit)
