"""A user's arrays made into an :class:`~audit.data.dataset.ImageDataset`: images, feature
rows (tabular) or texts (byte tokens), with labels and each item's client.

The project's own choices:

* **images** may be (N, C, H, W), (N, H, W, C) or (N, H, W) (one channel). ``layout="auto"``
  takes channels first when ``shape[1]`` is 1 or 3 and ``shape[3]`` is not, channels last
  in the mirror case, and otherwise asks for ``layout="nchw"`` or ``"nhwc"`` (which accept
  any number of channels). Floats must lie in [0, 1]; integers (e.g. uint8) in [0, 255],
  divided by 255; bools are 0 / 1.
* **features** (N, D) are stored as (N, 1, 1, D) with ``modality="tabular"`` (as
  ``purchase-synthetic``), in [0, 1] like every item: ``scale="minmax"`` maps each feature
  to [0, 1] over the whole file (a constant feature becomes 0; the ranges are kept in
  ``meta["feature_min"]`` / ``meta["feature_max"]``), ``scale="none"`` keeps the values and
  refuses any outside [0, 1].
* **texts** become byte tokens of ``length`` (:func:`audit.data.dataset.from_texts`, as the
  ``records`` dataset), the raw texts in ``meta["items"]["texts"]``.
* **clients** (dense codes, :func:`audit.data.loaders.local_checks.client_ids`) go to
  ``ImageDataset.clients``, their original ids to ``meta["client_names"]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from audit.core.errors import invalid
from audit.core.validation import check_interval, check_options
from audit.data.dataset import ImageDataset, from_arrays, from_texts

LAYOUTS = ("auto", "nchw", "nhwc")
SCALES = ("minmax", "none")


def numeric_array(x: np.ndarray, param: str, owner: str, key: str) -> np.ndarray:
    """Refuse an array that is not numeric or not finite, naming array ``key``."""
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise invalid(param, owner, "a numeric array", f"array {key!r} of dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.inexact) and not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise invalid(param, owner, "finite values", f"{x[tuple(bad)]} in array {key!r} at item {bad[0]}")
    return x


def channels_last(x: np.ndarray, param: str, owner: str, key: str, layout: str) -> np.ndarray:
    """Images (N, H, W, C) in [0, 1] (float64) from ``x`` in one of the layouts above."""
    layout = check_options("layout", owner, layout, LAYOUTS)
    x = numeric_array(np.asarray(x), param, owner, key)
    if x.ndim == 3:
        x, layout = x[..., None], "nhwc"
    if x.ndim != 4:
        raise invalid(param, owner, "images (N, C, H, W), (N, H, W, C) or (N, H, W), or features (N, D)",
                      f"array {key!r} of shape {x.shape}")
    if layout == "auto":
        first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
        if first == last:
            raise invalid("layout", owner, f"'nchw' or 'nhwc' for images of shape {x.shape} (the "
                          "channel axis is ambiguous)", layout)
        layout = "nchw" if first else "nhwc"
    if layout == "nchw":
        x = x.transpose(0, 2, 3, 1)
    if x.dtype == np.bool_:
        return x.astype(np.float64)
    integral = np.issubdtype(x.dtype, np.integer)
    high = 255 if integral else 1
    if x.size and (x.min() < 0 or x.max() > high):
        raise invalid(param, owner, "images in [0, 1] (floats) or [0, 255] (integers)",
                      f"array {key!r} with values in [{x.min():g}, {x.max():g}]")
    return x.astype(np.float64) / high


def scale_features(x: np.ndarray, owner: str, scale: str, names: tuple[str, ...] | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Features (N, D) in [0, 1] per ``scale``, and the ``meta`` entries recording it."""
    scale = "none" if scale is None else scale  # the command line reads scale=none as None
    scale = check_options("scale", owner, scale, SCALES)
    x = np.asarray(x, dtype=np.float64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    if scale == "none":
        out = np.flatnonzero((lo < 0) | (hi > 1))
        if len(out):
            j = int(out[0])
            which = repr(names[j]) if names else f"feature {j}"
            raise invalid("scale", owner, f"'minmax' for features outside [0, 1] ({which} ranges over "
                          f"[{lo[j]:g}, {hi[j]:g}])", scale)
        return x, {}
    span = hi - lo
    scaled = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)
    return scaled, {"feature_min": tuple(float(v) for v in lo), "feature_max": tuple(float(v) for v in hi)}


def limit_items(limit: int | None, owner: str) -> int | None:
    """The checked ``limit`` (None: every item)."""
    return None if limit is None else check_interval("limit", owner, limit, kind=int, low=1)


def _client_meta(meta: dict[str, Any], clients) -> dict[str, Any]:
    if clients is not None:
        meta["client_names"] = clients[1]
    return meta


def image_dataset(name: str, images: np.ndarray, labels: np.ndarray, num_classes: int, source: str,
                  clients=None, meta: dict[str, Any] | None = None) -> ImageDataset:
    """A classification dataset of ``images`` (N, H, W, C) in [0, 1]; ``clients`` is
    ``(codes, names)`` or None."""
    ds = from_arrays(name, images, labels, num_classes, source, None)
    return dataclasses.replace(ds, clients=None if clients is None else clients[0],
                               meta=_client_meta(dict(meta or {}), clients) or None)


def tabular_dataset(name: str, features: np.ndarray, labels: np.ndarray, num_classes: int, source: str,
                    owner: str, scale: str, names: tuple[str, ...] | None = None,
                    clients=None) -> ImageDataset:
    """A tabular classification dataset of ``features`` (N, D), scaled per ``scale``, stored
    (N, 1, 1, D)."""
    x, meta = scale_features(features, owner, scale, names)
    if names is not None:
        meta["features"] = names
    ds = image_dataset(name, x.reshape(len(x), 1, x.shape[1], 1), labels, num_classes, source,
                       clients, meta)
    return dataclasses.replace(ds, modality="tabular")


def text_dataset(name: str, texts: list[str], length: int, source: str, owner: str,
                 clients=None) -> ImageDataset:
    """A language-modelling dataset of ``texts`` as byte tokens of ``length``."""
    length = check_interval("length", owner, length, kind=int, low=8, high=4096)
    meta = _client_meta({"tokenizer": "byte", "items": {"texts": tuple(texts)}}, clients)
    return from_texts(name, texts, length, source, meta=meta,
                      clients=None if clients is None else clients[0])
