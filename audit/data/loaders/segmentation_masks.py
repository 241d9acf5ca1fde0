"""What the loaders of segmentation data share: reading masks, cropping them like their
images, and building the segmentation dataset.

The project's own choices, the same in every loader that uses this module:

* a **binary mask** marks a pixel when it holds a nonzero value in a single-band image (L, 1,
  P palette index, I, F) or a nonzero colour channel otherwise (alpha is ignored);
* a mask (or a label map) must have the pixel size of its image, and gets the image's centre
  crop to a square (:func:`audit.data.loaders.image_folder.square_image`) and a
  nearest-neighbour resize, so classes are never blended;
* errors name the file (or the file and the key) that holds the bad mask.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, UnidentifiedImageError

from audit.core.errors import InvalidParameterError

SINGLE_BAND = ("1", "L", "P", "I", "I;16", "F")


def mask_pixels(im: Image.Image) -> np.ndarray:
    """(H, W) bool: the marked pixels of mask ``im`` (the module docstring's rule)."""
    if im.mode in SINGLE_BAND:
        return np.asarray(im) != 0
    return np.asarray(im.convert("RGB")).any(axis=2)


def square_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8: label map ``labels`` (H, W, values 0..255) centre-cropped to a
    square and resized nearest-neighbour."""
    h, w = labels.shape
    s = min(w, h)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = Image.fromarray(np.ascontiguousarray(labels[y0: y0 + s, x0: x0 + s]).astype(np.uint8))
    return np.asarray(crop.resize((size, size), Image.Resampling.NEAREST))


def square_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: binary ``mask`` (H, W) cropped and resized as :func:`square_labels`."""
    return square_labels(mask.astype(np.uint8), size) > 0


def read_mask(source, shown: str, image: str, image_size: tuple[int, int], size: int,
              what: str) -> np.ndarray:
    """(size, size) bool: the ``what`` mask at ``source`` (a path or a binary file object,
    ``shown`` in errors) of the image ``image`` of pixel size ``image_size`` (W, H)."""
    try:
        with Image.open(source) as im:
            im.load()
            if im.size != image_size:
                raise InvalidParameterError(
                    f"The {what} mask {shown} is {im.size[0]}x{im.size[1]} pixels but its image "
                    f"{image} is {image_size[0]}x{image_size[1]}; they must have the same size.")
            arr = mask_pixels(im)
    except InvalidParameterError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidParameterError(
            f"Mask {shown} is unreadable or corrupt ({type(exc).__name__}).") from None
    return square_mask(arr, size)


def segmentation_dataset(name: str, images: list[np.ndarray], labels: list[np.ndarray],
                         num_classes: int, source: str, **fields):
    """A segmentation :class:`~audit.data.dataset.ImageDataset` of float ``images`` (H, W, C)
    and per-pixel class ``labels`` (H, W); ``fields`` (``psi_masks``, ``groups``, ``clients``,
    ``meta``) are set on it."""
    from audit.data.dataset import from_arrays

    ds = from_arrays(name, np.stack(images), np.stack(labels).astype(np.int64), num_classes,
                     source, None)
    return dataclasses.replace(ds, task="segmentation", **fields)
