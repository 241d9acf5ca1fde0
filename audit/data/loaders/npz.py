"""``npz``: a user's NumPy ``.npz`` archive of images or feature rows, labels and clients.

Arrays (names chosen by ``x_key``, ``y_key``, ``clients_key``):

* ``x``: images (N, C, H, W), (N, H, W, C) or (N, H, W), floats in [0, 1] or integers
  (uint8) in [0, 255]; or features (N, D), any finite numbers (tabular, scaled per
  ``scale``); see :mod:`audit.data.loaders.local_arrays` for the layouts and scaling;
* ``y``: (N,) integral class labels in [0, ``num_classes``);
* ``clients`` (optional): (N,) client id of each item (ints or strings), for the
  ``"column"`` client split (:mod:`audit.data.client_partition`).

The project's own choices: the archive is read with ``np.load(..., allow_pickle=False)``,
so an array of Python objects (a ragged or mixed array saved with pickle) is refused, never
unpickled; a missing ``clients`` array is no error unless ``clients_key`` was changed from
its default; ``limit`` keeps the first items.
"""

from __future__ import annotations

import zipfile

import numpy as np

from audit.core.errors import invalid
from audit.core.validation import check_options
from audit.data.dataset import ImageDataset
from audit.data.loaders.local_arrays import (LAYOUTS, SCALES, channels_last, image_dataset,
                                             limit_items, numeric_array, tabular_dataset)
from audit.data.loaders.local_checks import (check_count, check_nonempty, class_labels, client_ids,
                                             item, local_file)

_NAME = "npz"
_OWNER = f"dataset {_NAME!r}"
_CLIENTS = "clients"


def _array(archive, param: str, key, where: str, *, required: bool) -> np.ndarray | None:
    if not isinstance(key, str) or key not in archive.files:
        if not required and key == _CLIENTS:
            return None
        raise invalid(param, _OWNER, f"an array of {where} (arrays: {', '.join(archive.files) or 'none'})",
                      key)
    try:
        return archive[key]
    except ValueError:
        raise invalid(param, _OWNER, "an array of numbers (an array of Python objects, saved with pickle, "
                      "is never loaded)", key) from None


def npz(*, path=None, x_key: str = "x", y_key: str = "y", clients_key: str = _CLIENTS,
        layout: str = "auto", scale: str = "minmax", num_classes: int | None = None,
        limit: int | None = None) -> ImageDataset:
    """A local NumPy ``.npz`` archive: images or features ``x``, labels ``y``, optional ``clients``."""
    file = local_file(path, _NAME, (".npz",))
    limit = limit_items(limit, _OWNER)
    layout = check_options("layout", _OWNER, layout, LAYOUTS)
    scale = "none" if scale is None else scale  # the command line reads scale=none as None
    scale = check_options("scale", _OWNER, scale, SCALES)
    where = repr(str(file))
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise invalid("path", _OWNER, "a NumPy .npz archive", f"{file} (unreadable: {exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise invalid("path", _OWNER, "a NumPy .npz archive (np.savez)", f"{file} (a single .npy array)")
    with archive:
        x = _array(archive, "x_key", x_key, where, required=True)
        y = _array(archive, "y_key", y_key, where, required=True)
        c = _array(archive, "clients_key", clients_key, where, required=clients_key != _CLIENTS)
    if x.ndim == 0:
        raise invalid("x_key", _OWNER, "an array with one entry per item", f"array {x_key!r} of shape ()")
    check_nonempty(len(x), _OWNER, where)
    if y.ndim != 1:
        raise invalid("y_key", _OWNER, "labels of shape (N,)", f"array {y_key!r} of shape {y.shape}")
    check_count(len(y), len(x), "y_key", _OWNER, f"labels {y_key!r}")
    labels, k = class_labels(y, "y_key", _OWNER, y_key, item, num_classes)
    clients = None
    if c is not None:
        if c.ndim != 1:
            raise invalid("clients_key", _OWNER, "client ids of shape (N,)",
                          f"array {clients_key!r} of shape {c.shape}")
        check_count(len(c), len(x), "clients_key", _OWNER, f"client ids {clients_key!r}")
        clients = client_ids(c.tolist(), "clients_key", _OWNER, clients_key, item)
    n = len(x) if limit is None else min(limit, len(x))
    x, labels = x[:n], labels[:n]
    clients = None if clients is None else (clients[0][:n], clients[1])
    source = f"local NumPy archive {file}"
    if x.ndim == 2:
        if x.shape[1] == 0:
            raise invalid("x_key", _OWNER, "features (N, D) with D >= 1", f"array {x_key!r} of shape {x.shape}")
        feats = numeric_array(x, "x_key", _OWNER, x_key)
        return tabular_dataset(_NAME, feats, labels, k, source, _OWNER, scale, clients=clients)
    images = channels_last(x, "x_key", _OWNER, x_key, layout)
    return image_dataset(_NAME, images, labels, k, source, clients)
