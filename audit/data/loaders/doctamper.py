"""``doctamper``: the DocTamper document images with pixel tamper masks (FedRE's data).

Source: C. Qu, C. Liu, Y. Liu, X. Chen, D. Peng, F. Guo, L. Jin, "Towards Robust Tampered
Text Detection in Document Image: New Dataset and New Solution", CVPR 2023; released (on
request, non-commercial) from github.com/qcf-568/DocTamper; used by FedRE (arXiv
2505.04889). Each part of the release is an LMDB database, a folder with ``data.mdb`` and
``lock.mdb``::

    path/DocTamperV1-TrainingSet/data.mdb    120,000 training images
    path/DocTamperV1-TestingSet/data.mdb     30,000 test images
    path/DocTamperV1-FCD/data.mdb            2,000 cross-domain test images (FCD)
    path/DocTamperV1-SCD/data.mdb            18,000 cross-domain test images (SCD)

In each, the key ``num-samples`` holds the item count as text, and item ``i`` (from 0) is
the encoded image under ``image-%09d`` (JPEG) and its tamper mask under ``label-%09d``
(PNG, nonzero = tampered), the keys the authors' own loaders read.

The project's own choices:

* ``path`` is either one such LMDB folder (it holds ``data.mdb``), read as it is, or the
  folder holding the four, where ``split`` picks one: ``train`` (default), ``test``,
  ``fcd``, ``scd``;
* ``limit`` reads the first items only (the training set is large);
* masks follow :mod:`audit.data.loaders.segmentation_masks` (nonzero pixels, same pixel
  size as the image, the image's centre crop, nearest-neighbour resize to ``size`` px);
* the database is opened read-only, without a lock, so a read-only copy works;
* reading LMDB needs the ``lmdb`` package, the optional ``doctamper`` extra; without it
  the error says how to install it. A part converted to files by the authors'
  ``cvtlmdb.py`` (``images/<i>.jpg`` + ``masks/<i>.png``) reads with ``document-folder``
  and needs no extra.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval, check_options
from audit.data.loaders.image_folder import _directory, read_image_sized
from audit.data.loaders.segmentation_masks import read_mask, segmentation_dataset

_NAME = "doctamper"
_OWNER = f"dataset {_NAME!r}"
DOCTAMPER_EXTRA = "pip install 'fedaudit[doctamper]'"
PARTS = {"train": "DocTamperV1-TrainingSet", "test": "DocTamperV1-TestingSet",
         "fcd": "DocTamperV1-FCD", "scd": "DocTamperV1-SCD"}


def import_lmdb():
    """``import lmdb``, or a clear error saying how to install the ``doctamper`` extra."""
    try:
        import lmdb
    except ImportError:
        raise InvalidParameterError(
            f"Dataset {_NAME!r} reads DocTamper's LMDB databases with the 'lmdb' package, an "
            f"optional extra: {DOCTAMPER_EXTRA}. Got no 'lmdb' package instead.") from None
    return lmdb


def _database(root: Path, split: str | None) -> Path:
    if (root / "data.mdb").is_file():
        if split is not None:
            raise invalid("split", _OWNER, f"None when 'path' is one LMDB part ({root} holds "
                          "data.mdb); split picks a part of the folder holding the four", split)
        return root
    split = check_options("split", _OWNER, "train" if split is None else split, tuple(PARTS))
    db = root / PARTS[split]
    if not (db / "data.mdb").is_file():
        raise InvalidParameterError(
            f"The 'path' parameter of {_OWNER} must be a DocTamper LMDB folder (with data.mdb) or "
            f"hold {PARTS[split]}/data.mdb for split={split!r}. Got {str(root)!r} "
            f"({str(db / 'data.mdb')!r} is missing) instead.")
    return db


def _count(txn, data: Path) -> int:
    raw = txn.get(b"num-samples")
    try:
        n = int(raw.decode("ascii"))
    except (AttributeError, UnicodeDecodeError, ValueError):
        raise InvalidParameterError(
            f"LMDB file {str(data)!r} of {_OWNER} has no item count: key 'num-samples' is "
            f"{'missing' if raw is None else repr(raw[:20])}.") from None
    if n < 1:
        raise invalid("path", _OWNER, "a DocTamper part with at least one item",
                      f"{data} (num-samples {n})")
    return n


def _value(txn, key: str, data: Path) -> io.BytesIO:
    raw = txn.get(key.encode("ascii"))
    if raw is None:
        raise InvalidParameterError(
            f"LMDB file {str(data)!r} of {_OWNER} has no key {key!r}, although its num-samples "
            "counts that item.")
    return io.BytesIO(raw)


def _corrupt(data: Path, exc: Exception) -> InvalidParameterError:
    return InvalidParameterError(
        f"LMDB file {str(data)!r} of {_OWNER} is unreadable or corrupt ({type(exc).__name__}).")


def doctamper(*, path=None, split: str | None = None, size: int = 64, limit: int | None = None):
    """DocTamper from its LMDB release: binary tamper segmentation."""
    root = _directory(path, _NAME)
    size = check_interval("size", _OWNER, size, kind=int, low=8, high=1024)
    if limit is not None:
        limit = check_interval("limit", _OWNER, limit, kind=int, low=1)
    db = _database(root, split)
    data = db / "data.mdb"
    lmdb = import_lmdb()
    try:
        env = lmdb.open(str(db), readonly=True, lock=False, readahead=False, meminit=False,
                        max_readers=1)
    except lmdb.Error as exc:
        raise _corrupt(data, exc) from None
    images, masks = [], []
    try:
        with env.begin(write=False) as txn:
            n = _count(txn, data)
            for i in range(n if limit is None else min(n, limit)):
                image_key, label_key = f"image-{i:09d}", f"label-{i:09d}"
                shown = f"{image_key!r} in LMDB file {str(data)!r}"
                image, shape = read_image_sized(_value(txn, image_key, data), size, f"Image {shown}")
                images.append(image)
                masks.append(read_mask(_value(txn, label_key, data),
                                       f"{label_key!r} in LMDB file {str(data)!r}", shown, shape,
                                       size, "tamper"))
    except lmdb.Error as exc:
        raise _corrupt(data, exc) from None
    finally:
        env.close()
    return segmentation_dataset(_NAME, images, masks, 2, f"DocTamper {db.name}, {db}",
                                groups=torch.zeros(len(images), dtype=torch.long))
