"""``hf-disk``: a Hugging Face ``datasets`` dataset saved with ``save_to_disk``, read locally.

``datasets.load_from_disk(path)`` reads the directory (nothing is downloaded); a
``DatasetDict`` needs ``split=`` unless it holds one split. What the columns are:

* ``text=COLUMN``: language modelling: the texts become byte tokens of ``length``
  (:func:`audit.data.dataset.from_texts`, as the ``records`` dataset); no label;
* ``image=COLUMN`` + ``label=COLUMN``: images. PIL images (the ``Image`` feature) are made
  RGB, centre-cropped and resized to ``size`` px as ``image-folder`` does; arrays (e.g.
  ``Array3D``, nested lists) are read as ``npz`` reads ``x`` (layouts, [0, 1] or
  [0, 255]);
* otherwise ``label=COLUMN`` + ``features=a,b,c`` (default: every other numeric column):
  feature rows, as ``table`` reads them (:mod:`audit.data.loaders.columns`).

``client_column=COLUMN`` names each row's client in every mode. A ``ClassLabel`` label
column gives ``num_classes`` (unless given) and ``meta["class_names"]``. The project's own
choices: ``datasets`` is the optional ``hf`` extra, a missing one is an error saying how to
install it; ``limit`` keeps the first rows (``Dataset.select``) before anything is decoded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval, check_options
from audit.data.dataset import ImageDataset
from audit.data.loaders.columns import columns_dataset, require_column
from audit.data.loaders.image_folder import _directory, square_image
from audit.data.loaders.local_arrays import (LAYOUTS, channels_last, image_dataset, limit_items,
                                             text_dataset)
from audit.data.loaders.local_checks import check_nonempty, class_labels, client_ids

_NAME = "hf-disk"
_OWNER = f"dataset {_NAME!r}"
HF_EXTRA = "pip install 'fedaudit[hf]'"


def import_datasets():
    """``import datasets``, or a clear error saying how to install the ``hf`` extra."""
    try:
        import datasets
    except ImportError:
        raise InvalidParameterError(
            f"Dataset {_NAME!r} reads Hugging Face datasets saved with save_to_disk with the "
            f"'datasets' package, an optional extra: {HF_EXTRA}. Got no 'datasets' package "
            "instead.") from None
    return datasets


def _split(loaded, split, datasets):
    if not isinstance(loaded, datasets.DatasetDict):
        if split is not None:
            raise invalid("split", _OWNER, "None for a dataset saved without splits", split)
        return loaded
    names = list(loaded)
    if split is None and len(names) == 1:
        return loaded[names[0]]
    if split not in names:
        raise invalid("split", _OWNER, "a split of the saved DatasetDict (splits: "
                      f"{', '.join(names)})", split)
    return loaded[split]


def _row(i: int) -> str:
    return f"row {i}"


def _none_with(mode: str, **params) -> None:
    for param, value in params.items():
        if value is not None:
            raise invalid(param, _OWNER, f"None with {mode}", value)


def _images(values: list, size: int, layout: str, column: str) -> np.ndarray:
    from PIL import Image

    missing = next((i for i, v in enumerate(values) if v is None), None)
    if missing is not None:
        raise invalid("image", _OWNER, f"a column of images ({column!r} holds None at {_row(missing)})",
                      column)
    if all(isinstance(v, Image.Image) for v in values):
        return np.stack([square_image(v, size) for v in values])
    try:
        x = np.asarray(values)
    except ValueError:
        x = None
    if x is None or x.dtype == object:
        raise invalid("image", _OWNER, "a column of PIL images or of arrays of one shape "
                      "(its rows differ in shape)", column)
    return channels_last(x, "image", _OWNER, column, layout)


def hf_disk(*, path=None, split: str | None = None, label: str | None = None,
            image: str | None = None, features: str | Sequence[str] | None = None,
            text: str | None = None, client_column: str | None = None,
            num_classes: int | None = None, size: int = 32, length: int = 64,
            layout: str = "auto", scale: str = "minmax", limit: int | None = None) -> ImageDataset:
    """A local Hugging Face dataset (``save_to_disk``): images, feature rows or texts."""
    root = _directory(path, _NAME)
    size = check_interval("size", _OWNER, size, kind=int, low=4, high=1024)
    layout = check_options("layout", _OWNER, layout, LAYOUTS)
    limit = limit_items(limit, _OWNER)
    datasets = import_datasets()
    try:
        loaded = datasets.load_from_disk(str(root))
    except (OSError, ValueError, IndexError) as exc:  # datasets 5.0 fails on an empty dataset with IndexError
        raise invalid("path", _OWNER, "a directory written by save_to_disk, of at least one item",
                      f"{root} ({type(exc).__name__}: {exc})") from None
    ds = _split(loaded, split, datasets)
    where = f"the dataset at {str(root)!r}"
    check_nonempty(len(ds), _OWNER, where)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    names = list(ds.column_names)
    source = f"local Hugging Face dataset {root}" + (f" (split {split})" if split else "")
    if text is not None:
        _none_with("text=", label=label, image=image, features=features, num_classes=num_classes)
        require_column(names, "text", text, _OWNER, where)
        texts = list(ds[text])
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise invalid("text", _OWNER, f"a column of strings ({text!r} holds {texts[bad]!r} at "
                          f"{_row(bad)})", text)
        return text_dataset(_NAME, texts, length, source, _OWNER, _clients(ds, client_column, where))
    label = require_column(names, "label", label, _OWNER, where)
    feature = ds.features[label]
    class_names = None
    if isinstance(feature, datasets.ClassLabel):
        class_names = tuple(feature.names)
        num_classes = feature.num_classes if num_classes is None else num_classes
    if image is None:
        # scalar columns, and those named; never decode an image column nobody asked for
        scalar = (datasets.Value, datasets.ClassLabel)
        named = {label, client_column, *_listed(features)}
        columns = {c: list(ds[c]) for c in names if c in named or isinstance(ds.features[c], scalar)}
        return columns_dataset(_NAME, columns, _row, where=where, source=source, label=label,
                               features=features, client_column=client_column, scale=scale,
                               num_classes=num_classes, limit=None, class_names=class_names)
    _none_with("image=", features=features)
    require_column(names, "image", image, _OWNER, where)
    scale = "none" if scale is None else scale  # the command line reads scale=none as None
    check_options("scale", _OWNER, scale, ("minmax", "none"))
    x = _images(list(ds[image]), size, layout, image)
    y, k = class_labels(list(ds[label]), "label", _OWNER, label, _row, num_classes)
    meta = {} if class_names is None else {"class_names": class_names}
    return image_dataset(_NAME, x, y, k, source, _clients(ds, client_column, where), meta)


def _listed(features) -> list:
    if isinstance(features, str):
        return [f.strip() for f in features.split(",")]
    return list(features) if isinstance(features, (list, tuple)) else []


def _clients(ds, column: str | None, where: str):
    if column is None:
        return None
    require_column(list(ds.column_names), "client_column", column, _OWNER, where)
    return client_ids(list(ds[column]), "client_column", _OWNER, column, _row)
