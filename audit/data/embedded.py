"""Embedded image datasets (shipped with scikit-image and scikit-learn) .

Nothing is downloaded: ``natural-32``/``natural-64`` are crops of the RGB photographs that
ship inside scikit-image, ``lfw`` is scikit-image's LFW subset, ``digits`` is
scikit-learn's 8x8 digits. Users' own data come through :mod:`audit.data.loaders.image_folder`
(``image-folder``, ``cifar10``).

Choices: natural crops are a centre square crop plus two more squares per source (the
first ``n_sources`` items are the distinct centre crops), label = source image; ``lfw`` is
interleaved face / non-face so the first items are faces (label 1).
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

from audit.core.validation import check_interval
from audit.data.dataset import ImageDataset, from_arrays

NATURAL_SOURCES = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
    "immunohistochemistry", "retina", "colorwheel",
)



def _resize(img: np.ndarray, size: int) -> np.ndarray:
    return resize(img, (size, size), anti_aliasing=True, preserve_range=True)


def natural(size: int, name: str):
    """The factory of ``name``: natural crops of ``size`` x ``size`` pixels."""

    def factory(*, limit: int | None = None) -> ImageDataset:
        import skimage.data as skdata

        crops: list[list[np.ndarray]] = [[], [], []]
        for src in NATURAL_SOURCES:
            img = getattr(skdata, src)()[..., :3].astype(np.float64) / 255.0
            h, w = img.shape[:2]
            s = min(h, w)
            half = s // 2
            boxes = [
                ((h - s) // 2, (w - s) // 2, s),  # centre square
                (0, 0, half),  # top-left quarter
                (h - half, w - half, half),  # bottom-right quarter
            ]
            for k, (y0, x0, side) in enumerate(boxes):
                crops[k].append(_resize(img[y0 : y0 + side, x0 : x0 + side], size))
        images = np.stack([c for group in crops for c in group])
        labels = np.tile(np.arange(len(NATURAL_SOURCES)), 3)
        return from_arrays(name, images, labels, len(NATURAL_SOURCES),
                           "scikit-image data: " + ", ".join(NATURAL_SOURCES), limit)

    factory.__doc__ = f"{3 * len(NATURAL_SOURCES)} crops of scikit-image's natural photographs, {size}x{size} RGB"
    return factory


def _gray(images: np.ndarray, size: int | None, name: str) -> np.ndarray:
    if size is not None:
        size = check_interval("size", name, size, kind=int, low=4, high=512)
        images = np.stack([_resize(i, size) for i in images])
    return images[..., None]


def lfw(*, size: int | None = None, limit: int | None = None) -> ImageDataset:
    """scikit-image's LFW subset: 100 faces and 100 non-faces, 25x25 grayscale."""
    import skimage.data as skdata

    raw = skdata.lfw_subset().astype(np.float64)
    order = np.ravel(np.column_stack([np.arange(100), np.arange(100, 200)]))
    labels = (order < 100).astype(np.int64)
    return from_arrays("lfw", _gray(raw[order], size, "lfw"), labels, 2, "scikit-image lfw_subset", limit)


def digits(*, size: int | None = None, limit: int | None = None) -> ImageDataset:
    """scikit-learn's handwritten digits: 1797 images, 8x8 grayscale, 10 classes."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return from_arrays("digits", _gray(d.images / 16.0, size, "digits"), d.target, 10, "scikit-learn load_digits", limit)
