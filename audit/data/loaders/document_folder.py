"""A user's own document images with tamper masks (and optional PSI masks) from a folder.

Layout::

    path/images/<stem>.<png|jpg|jpeg|bmp|gif|tif|tiff|webp>
    path/masks/<stem>.png      tamper mask, nonzero = tampered (required for every image)
    path/psi/<stem>.png        PSI mask, nonzero = privacy-sensitive (optional folder; when
                               it exists, every image needs one)

Images are centre-cropped to a square and resized bicubically (as
:func:`audit.data.loaders.image_folder.image_folder` does); masks get the same crop and a nearest-neighbour
resize. A mask must have the pixel size of its image. "Nonzero" means a nonzero value in a
single-band mask (L, 1, P palette index, I) and a nonzero colour channel otherwise (alpha is
ignored). The result is a segmentation :class:`~audit.data.dataset.ImageDataset` like
:func:`audit.data.generated.documents.documents`, with ``groups`` all zero (one template).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval
from audit.data.loaders.image_folder import IMAGE_SUFFIXES, _directory, read_image_sized, subfolder
from audit.data.loaders.segmentation_masks import read_mask, segmentation_dataset

_NAME = "document-folder"


def _read_mask(path: Path, image: Path, image_size: tuple[int, int], size: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise InvalidParameterError(
            f"Image file {str(image)!r} has no {what} mask: expected {str(path)!r}.")
    return read_mask(path, f"file {str(path)!r}", f"{str(image)!r}", image_size, size, what)


def document_folder(*, path=None, size: int = 64, limit: int | None = None):
    """Local document images + tamper masks (+ optional PSI masks) for tamper segmentation."""
    root = _directory(path, _NAME)
    size = check_interval("size", f"dataset {_NAME!r}", size, kind=int, low=8, high=1024)
    images_dir = subfolder(root, "images", _NAME, "the document images")
    masks_dir = subfolder(root, "masks", _NAME, "a <stem>.png tamper mask per image")
    psi_dir = root / "psi" if (root / "psi").is_dir() else None
    files = sorted(f for f in images_dir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidParameterError(
            f"The 'path' parameter of dataset {_NAME!r} must hold images in images/. "
            f"Got {str(root)!r} (no images found in {str(images_dir)!r}) instead.")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise InvalidParameterError(
                f"Image files {str(stems[f.stem])!r} and {str(f)!r} share the stem {f.stem!r}; "
                "each image needs a unique name so that its mask is unambiguous.")
        stems[f.stem] = f
    if limit is not None:
        files = files[: check_interval("limit", f"dataset {_NAME!r}", limit, kind=int, low=1)]
    images, tamper, psi = [], [], []
    for f in files:
        image, shape = read_image_sized(f, size)
        images.append(image)
        tamper.append(_read_mask(masks_dir / f"{f.stem}.png", f, shape, size, "tamper"))
        if psi_dir is not None:
            psi.append(_read_mask(psi_dir / f"{f.stem}.png", f, shape, size, "PSI"))
    return segmentation_dataset(
        _NAME, images, tamper, 2, f"local document folder {root}",
        psi_masks=None if psi_dir is None else torch.from_numpy(np.stack(psi)),
        groups=torch.zeros(len(files), dtype=torch.long))
