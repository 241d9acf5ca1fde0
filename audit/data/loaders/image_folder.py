"""Loaders for a user's local data: an image folder and CIFAR-10 python batches.

The CIFAR-10 "python version" files are pickles. They are read with a restricted unpickler
that can rebuild numpy arrays and nothing else, so a file asking for any other global
(``os.system``...) is refused as unsafe instead of being executed.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_options

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _directory(path, name: str) -> Path:
    if path is None:
        raise InvalidParameterError(f"The 'path' parameter of dataset {name!r} is required. Got None instead.")
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise InvalidParameterError(f"The 'path' parameter of dataset {name!r} must be an existing directory. Got {str(p)!r} (missing) instead.")
    if not p.is_dir():
        raise InvalidParameterError(f"The 'path' parameter of dataset {name!r} must be a directory. Got {str(p)!r} (not a directory) instead.")
    return p


def subfolder(root: Path, name: str, dataset: str, what: str) -> Path:
    """The folder ``name`` of ``root`` (an exact match first, else one matched
    case-insensitively) holding ``what`` for ``dataset``, or an error naming it."""
    if (root / name).is_dir():
        return root / name
    for d in sorted(root.iterdir()):
        if d.is_dir() and d.name.lower() == name.lower():
            return d
    raise InvalidParameterError(
        f"The 'path' parameter of dataset {dataset!r} must hold a {name}/ folder with {what}. "
        f"Got {str(root)!r} ({str(root / name)!r} is missing) instead.")


def square_image(im: Image.Image, size: int) -> np.ndarray:
    """``im`` as RGB, centre-cropped to a square, resized bicubically to ``size`` px: (H, W, 3) in [0, 1]."""
    im = im.convert("RGB")
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    im = im.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.float64) / 255.0


def read_image_sized(source, size: int, shown: str | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """``(square_image(...), (width, height))`` of the image at ``source`` (a path or a binary
    file object); an unreadable one is an error naming ``shown`` (default: the file's path)."""
    try:
        with Image.open(source) as im:
            return square_image(im, size), im.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        what = shown if shown is not None else f"Image file {str(source)!r}"
        raise InvalidParameterError(f"{what} is unreadable or corrupt ({type(exc).__name__}).") from None


def _read_image(path: Path, size: int) -> np.ndarray:
    return read_image_sized(path, size)[0]


def image_folder(*, path=None, size: int = 32, limit: int | None = None):
    """A local image folder: class subfolders (ImageFolder layout) or a flat folder."""
    from audit.data.dataset import from_arrays

    root = _directory(path, "image-folder")
    size = check_interval("size", "image-folder", size, kind=int, low=4, high=1024)
    subdirs = sorted(d for d in root.iterdir() if d.is_dir())
    groups = [(i, d) for i, d in enumerate(subdirs)] if subdirs else [(0, root)]
    files = [
        (label, f)
        for label, d in groups
        for f in sorted(d.iterdir())
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise InvalidParameterError(f"The 'path' parameter of dataset 'image-folder' must hold images. Got {str(root)!r} (no images found) instead.")
    if limit is not None:
        files = files[: check_interval("limit", "image-folder", limit, kind=int, low=1)]
    images = np.stack([_read_image(f, size) for _, f in files])
    labels = np.array([label for label, _ in files])
    return from_arrays("image-folder", images, labels, max(len(groups), 1), f"local folder {root}", None)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, bytes and numpy arrays; refuses every other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    if not path.is_file():
        raise InvalidParameterError(f"CIFAR-10 batch file {str(path)!r} is missing.")
    try:
        data = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        raw = np.asarray(data[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = [int(v) for v in data[b"labels"]]
        if len(labels) != len(raw):
            raise ValueError("label count differs from image count")
    except Exception as exc:  # corrupt, truncated, unsafe or mis-shaped
        raise InvalidParameterError(f"CIFAR-10 batch file {str(path)!r} is corrupt or unsafe ({exc}).") from None
    return raw, labels


def cifar10(*, path=None, split: str = "test", limit: int | None = None):
    """Local CIFAR-10 python batches (the ``cifar-10-batches-py`` directory)."""
    from audit.data.dataset import from_arrays

    root = _directory(path, "cifar10")
    split = check_options("split", "cifar10", split, ("train", "test"))
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    arrays, labels = [], []
    for n in names:
        raw, lab = _read_batch(root / n)
        arrays.append(raw)
        labels += lab
        if limit is not None and len(labels) >= limit:
            break
    images = np.concatenate(arrays).transpose(0, 2, 3, 1).astype(np.float64) / 255.0
    return from_arrays("cifar10", images, np.array(labels), 10, f"local CIFAR-10 batches {root}", limit)
