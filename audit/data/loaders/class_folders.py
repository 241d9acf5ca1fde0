"""What the loaders of published class-folder datasets share (``oct-c8``, ``kvasir-v2``).

Such a dataset is a folder with one subfolder per class, named as its release names them;
the class list is fixed by the loader, so class ``k`` is always the same disease whatever
part of the copy is on disk. The project's own choices:

* class folders match their names case-insensitively (``DRUSEN`` or ``drusen``); hidden
  folders (a leading ``.``) are skipped; any other folder is an unknown class and an error,
  as is a missing class folder;
* files with an image suffix (:data:`audit.data.loaders.image_folder.IMAGE_SUFFIXES`) are
  read, sorted by name within each class; other files are skipped;
* items are interleaved over the classes (the first image of each class, then the second of
  each ...), so ``limit=`` keeps the classes balanced instead of taking the first class only;
* images are made RGB, centre-cropped to a square and resized bicubically to ``size`` px
  (:func:`audit.data.loaders.image_folder.square_image`).
"""

from __future__ import annotations

import dataclasses
from itertools import zip_longest
from pathlib import Path

import numpy as np

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval
from audit.data.loaders.image_folder import IMAGE_SUFFIXES, _read_image, subfolder


def _class_files(root: Path, classes: tuple[str, ...], dataset: str) -> list[list[Path]]:
    wanted = {c.lower(): c for c in classes}
    found: dict[str, Path] = {}
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        key = d.name.lower()
        if key not in wanted:
            raise InvalidParameterError(
                f"Folder {str(d)!r} of dataset {dataset!r} is not one of its classes "
                f"({', '.join(classes)}).")
        if key in found:
            raise InvalidParameterError(
                f"Folders {str(found[key])!r} and {str(d)!r} of dataset {dataset!r} name the same "
                f"class {wanted[key]!r}.")
        found[key] = d
    missing = [c for c in classes if c.lower() not in found]
    if missing:
        raise InvalidParameterError(
            f"Dataset {dataset!r} expects a folder per class in {str(root)!r}: "
            f"{str(root / missing[0])!r} is missing.")
    return [sorted(f for f in found[c.lower()].iterdir()
                   if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES) for c in classes]


def class_folder_dataset(dataset: str, root: Path, classes: tuple[str, ...], *, size, limit,
                         source: str, split: str | None = None):
    """The classification dataset of the class folders of ``root`` (of its folder ``split``,
    matched case-insensitively, when given); see the module docstring."""
    from audit.data.dataset import from_arrays

    owner = f"dataset {dataset!r}"
    size = check_interval("size", owner, size, kind=int, low=4, high=1024)
    if limit is not None:
        limit = check_interval("limit", owner, limit, kind=int, low=1)
    if split is not None:
        root = subfolder(root, split, dataset, "a folder per class")
    per_class = _class_files(root, classes, dataset)
    items = [(label, f) for row in zip_longest(*per_class) for label, f in enumerate(row)
             if f is not None][:limit]
    if not items:
        raise InvalidParameterError(
            f"The 'path' parameter of {owner} must hold images in its class folders. "
            f"Got {str(root)!r} (no images found) instead.")
    images = np.stack([_read_image(f, size) for _, f in items])
    labels = np.array([label for label, _ in items], dtype=np.int64)
    ds = from_arrays(dataset, images, labels, len(classes), f"{source}, {root}", None)
    return dataclasses.replace(ds, meta={"class_names": classes})
