"""Named columns (a CSV or Parquet table, a Hugging Face dataset) made into a tabular dataset.

The user names the label column (``label=``), the feature columns (``features=a,b,c``, a
comma-separated string or a list) and optionally the column of each row's client
(``client_column=``). The project's own choices:

* ``features`` defaults to every other column (not the label, not the client column) whose
  values are all numeric (:func:`audit.data.loaders.local_checks.numeric`), in file order;
  a named feature must be numeric, and may not be the label or the client column;
* a column named twice in ``features`` is an error, as is a table without any row;
* ``limit`` keeps the first rows (after every row is checked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from audit.core.errors import InvalidParameterError, invalid
from audit.data.dataset import ImageDataset
from audit.data.loaders.local_arrays import limit_items, tabular_dataset
from audit.data.loaders.local_checks import (Position, check_nonempty, class_labels, client_ids,
                                             is_numeric, numeric)


def require_column(names: Sequence[str], param: str, value, owner: str, where: str) -> str:
    """``value``, a column among ``names`` of ``where``."""
    if value is None:
        raise InvalidParameterError(f"The {param!r} parameter of {owner} is required (a column of "
                                    f"{where}). Got None instead.")
    if not isinstance(value, str) or value not in names:
        raise invalid(param, owner, f"a column of {where} (columns: {', '.join(names)})", value)
    return value


def _feature_names(columns: Mapping[str, Sequence], features, owner: str, where: str,
                   taken: set[str]) -> list[str]:
    if features is None:
        found = [c for c in columns if c not in taken and is_numeric(columns[c])]
        if not found:
            raise invalid("features", owner, f"numeric columns; {where} has none besides "
                          f"{', '.join(sorted(taken))}", features)
        return found
    names = [f.strip() for f in features.split(",")] if isinstance(features, str) else features
    if not isinstance(names, (list, tuple)) or not names:
        raise invalid("features", owner, "column names (a comma-separated str or a list)", features)
    for f in names:
        require_column(list(columns), "features", f, owner, where)
        if f in taken:
            raise invalid("features", owner, "columns other than the label and client columns", f)
    if len(set(names)) != len(names):
        raise invalid("features", owner, "distinct columns", features)
    return list(names)


def columns_dataset(name: str, columns: Mapping[str, Sequence], at: Position, *, where: str,
                    source: str, label, features, client_column, scale: str,
                    num_classes: int | None, limit: int | None,
                    class_names: tuple[str, ...] | None = None) -> ImageDataset:
    """The tabular dataset of ``columns`` (name -> one value per row, rows worded by ``at``)."""
    owner = f"dataset {name!r}"
    limit = limit_items(limit, owner)
    names = list(columns)
    label = require_column(names, "label", label, owner, where)
    taken = {label}
    if client_column is not None:
        taken.add(require_column(names, "client_column", client_column, owner, where))
    check_nonempty(len(columns[label]), owner, where)
    feats = _feature_names(columns, features, owner, where, taken)
    x = np.stack([numeric(columns[f], "features", owner, f, at) for f in feats], axis=1)
    y, k = class_labels(columns[label], "label", owner, label, at, num_classes)
    clients = None if client_column is None else client_ids(
        columns[client_column], "client_column", owner, client_column, at)
    if limit is not None:
        x, y = x[:limit], y[:limit]
        clients = None if clients is None else (clients[0][:limit], clients[1])
    ds = tabular_dataset(name, x, y, k, source, owner, scale, tuple(feats), clients)
    if class_names is not None:
        ds.meta["class_names"] = class_names
    return ds
