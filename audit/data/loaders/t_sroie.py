"""``t-sroie``: Tampered-SROIE receipts with their tampered-text regions (FedRE's data).

Source: Y. Wang, B. Zhang, H. Xie, Y. Zhang, "Tampered text detection via RGB and frequency
relationship modeling", Chinese Journal of Network and Information Security 8(3), 2022;
released at github.com/wangyuxin87/Tampered_sroie; used by FedRE (arXiv 2505.04889). The
receipts of ICDAR 2019 SROIE with some text lines tampered. Layout read (``path`` is the
folder the release unpacks to, as the DocTamper authors' T-SROIE scripts use it)::

    path/train/<name>.jpg
    path/test/<name>.jpg
    path/sroie_train_1011.json    COCO-style annotations of the train images
    path/sroie_test_1011.json     the same for the test images

Each annotation file holds ``images`` (``id``, ``file_name``), ``annotations``
(``image_id``, ``category_id``, ``segmentation``: one quadrilateral ``[x1, y1, ..., x4, y4]``
or a list of polygons, optional ``bbox`` ``[x, y, w, h]``) and ``categories``: ``text``
(authentic text) and ``text_temp`` (tampered text).

The project's own choices where the release leaves room:

* the annotation file of a split is the one ``sroie_<split>*.json`` in ``path`` (the
  release's ``sroie_<split>_1011.json``; two candidates are an error);
* the tampered category is the one named ``text_temp``, else id 2 (as the authors' scripts
  take it); its polygons are filled (edges included) into a full-resolution mask, its
  ``bbox`` when a ``segmentation`` is empty; authentic text is background, so the task is
  binary tamper segmentation like ``document-folder``;
* the items are the images the annotation file lists, sorted by file name (``limit`` keeps
  the first); image files it does not list are ignored;
* images and masks get ``document-folder``'s centre crop and resize to ``size`` px
  (:mod:`audit.data.loaders.segmentation_masks`).

A copy already converted to ``images/`` + ``masks/`` PNGs reads with ``document-folder``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_options
from audit.data.loaders.image_folder import _directory, read_image_sized, subfolder
from audit.data.loaders.segmentation_masks import segmentation_dataset, square_mask

_NAME = "t-sroie"
_OWNER = f"dataset {_NAME!r}"
SPLITS = ("train", "test")
TAMPERED = "text_temp"


def _annotation_file(root: Path, split: str) -> Path:
    found = sorted(root.glob(f"sroie_{split}*.json"))
    if not found:
        raise InvalidParameterError(
            f"The 'path' parameter of {_OWNER} must hold the {split} annotation file "
            f"sroie_{split}_1011.json. Got {str(root)!r} ({str(root / f'sroie_{split}_1011.json')!r} "
            "is missing) instead.")
    if len(found) > 1:
        raise InvalidParameterError(
            f"The 'path' parameter of {_OWNER} must hold one {split} annotation file; "
            f"{str(found[0])!r} and {str(found[1])!r} both match sroie_{split}*.json.")
    return found[0]


def _bad(path: Path, what: str) -> InvalidParameterError:
    return InvalidParameterError(f"Annotation file {str(path)!r} of {_OWNER} {what}.")


def _load(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _bad(path, f"is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("annotations", []), list):
        raise _bad(path, "must be COCO-style: an object with 'images' and 'annotations' lists")
    return doc


def _tampered_id(doc: dict) -> object:
    for c in doc.get("categories") or []:
        if isinstance(c, dict) and c.get("name") == TAMPERED:
            return c.get("id")
    return 2


def _points(values, path: Path, ann_id) -> list[tuple[float, float]]:
    try:
        xy = np.asarray(values, dtype=np.float64).reshape(-1)
        ok = xy.size >= 6 and xy.size % 2 == 0 and bool(np.isfinite(xy).all())
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise _bad(path, f"has a malformed polygon in annotation {ann_id!r} (expected x, y pairs, "
                         f"at least 3 points); got {values!r}")
    return [(float(x), float(y)) for x, y in xy.reshape(-1, 2)]


def _polygons(ann: dict, path: Path) -> list[list[tuple[float, float]]]:
    seg, ann_id = ann.get("segmentation") or [], ann.get("id")
    if isinstance(seg, list) and seg and not isinstance(seg[0], list):
        seg = [seg]
    if isinstance(seg, list) and seg:
        return [_points(s, path, ann_id) for s in seg]
    box = ann.get("bbox")
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise _bad(path, f"has annotation {ann_id!r} with neither a segmentation nor an "
                         f"[x, y, w, h] bbox; got bbox {box!r}") from None
    return [_points([x, y, x + w, y, x + w, y + h, x, y + h], path, ann_id)]


def _tampered_regions(doc: dict, path: Path) -> dict:
    tampered = _tampered_id(doc)
    regions: dict = {}
    for ann in doc.get("annotations", []):
        if not isinstance(ann, dict):
            raise _bad(path, f"has an annotation that is not an object: {ann!r}")
        if ann.get("category_id") == tampered:
            regions.setdefault(ann.get("image_id"), []).extend(_polygons(ann, path))
    return regions


def _listed_images(doc: dict, path: Path, folder: Path) -> list[tuple[object, Path]]:
    listed = []
    for entry in doc["images"]:
        name = entry.get("file_name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise _bad(path, f"has an image entry without a file_name: {entry!r}")
        image = folder / name
        if not image.is_file():
            raise _bad(path, f"lists the image {name!r}, but {str(image)!r} is missing")
        listed.append((entry.get("id"), image))
    return sorted(listed, key=lambda item: item[1].name)


def _mask(polygons: list, image_size: tuple[int, int]) -> np.ndarray:
    canvas = Image.new("L", image_size, 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        draw.polygon(poly, fill=1, outline=1)
    return np.asarray(canvas) > 0


def t_sroie(*, path=None, split: str = "train", size: int = 64, limit: int | None = None):
    """T-SROIE from its release files: binary tampered-text segmentation."""
    root = _directory(path, _NAME)
    split = check_options("split", _OWNER, split, SPLITS)
    size = check_interval("size", _OWNER, size, kind=int, low=8, high=1024)
    folder = subfolder(root, split, _NAME, f"the {split} receipt images")
    annotations = _annotation_file(root, split)
    doc = _load(annotations)
    regions = _tampered_regions(doc, annotations)
    items = _listed_images(doc, annotations, folder)
    if not items:
        raise _bad(annotations, "lists no images")
    if limit is not None:
        items = items[: check_interval("limit", _OWNER, limit, kind=int, low=1)]
    images, masks = [], []
    for image_id, file in items:
        image, shape = read_image_sized(file, size)
        images.append(image)
        masks.append(square_mask(_mask(regions.get(image_id, []), shape), size))
    return segmentation_dataset(_NAME, images, masks, 2, f"T-SROIE {split} split, {root}",
                                groups=torch.zeros(len(items), dtype=torch.long))
