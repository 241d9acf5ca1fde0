"""Embedded image datasets (shipped with scikit-image and scikit-learn) and their registry.

Nothing is downloaded: ``natural-32``/``natural-64`` are crops of the RGB photographs that
ship inside scikit-image, ``lfw`` is scikit-image's LFW subset, ``digits`` is
scikit-learn's 8x8 digits. Users' own data come through :mod:`audit.data_loaders`
(``image-folder``, ``cifar10``), registered here too.

Choices: natural crops are a centre square crop plus two more squares per source (the
first ``n_sources`` items are the distinct centre crops), label = source image; ``lfw`` is
interleaved face / non-face so the first items are faces (label 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from skimage.transform import resize

from audit.registry import Registry
from audit.validation import check_interval, check_known_keys

NATURAL_SOURCES = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
    "immunohistochemistry", "retina", "colorwheel",
)


@dataclass(frozen=True)
class ImageDataset:
    """Images (N, C, H, W) in [0, 1] with integer labels and per-channel statistics."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    channel_mean: tuple[float, ...]
    channel_std: tuple[float, ...]
    source: str
    #: "image" (spatial: shift augmentations make sense), "tabular" (a feature vector
    #: stored as (1, 1, D), no augmentation) or "text" (``images`` are token ids (N, T),
    #: see :mod:`audit.text_lm`)
    modality: str = "image"
    #: "classification" (``labels`` (N,) class indices), "segmentation" (``labels``
    #: (N, H, W) per-pixel class indices, e.g. tampered / authentic) or "language-modeling"
    #: (``labels`` (N, T) next-token ids, -100 where nothing is predicted)
    task: str = "classification"
    #: (N, H, W) bool, True on privacy-sensitive pixels (PSI regions), when the data has them
    psi_masks: torch.Tensor | None = None
    #: (N,) int group of each item (e.g. document template), for non-IID client splits
    groups: torch.Tensor | None = None
    #: cross-entropy class weights the task trains with (None: unweighted)
    class_weights: tuple[float, ...] | None = None
    #: extra metadata of generated data (e.g. ``records``' raw texts and canary secrets):
    #: dataset-level entries, kept by :meth:`subset`, except the mapping under ``"items"``
    #: (name -> sequence with one entry per item), which :meth:`subset` re-indexes. Not
    #: compared or hashed.
    meta: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W); (T,) for text (token ids per item)."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.labels)

    def mean_image(self) -> torch.Tensor:
        """The dataset-mean image: the trivial reconstruction baseline."""
        return self.images.mean(dim=0)

    def subset(self, indices) -> "ImageDataset":
        """The items at ``indices``, keeping classes and the parent's statistics."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return ImageDataset(
            self.name, self.images[idx], self.labels[idx], self.num_classes, self.channel_mean,
            self.channel_std, self.source, self.modality, self.task,
            None if self.psi_masks is None else self.psi_masks[idx],
            None if self.groups is None else self.groups[idx], self.class_weights,
            _subset_meta(self.meta, idx.tolist()))


def _subset_meta(meta: dict[str, Any] | None, idx: list[int]) -> dict[str, Any] | None:
    """``meta`` with its per-item entries (``meta["items"]``) taken at ``idx``."""
    if meta is None:
        return None
    out = dict(meta)
    if out.get("items") is not None:
        out["items"] = {k: tuple(v[i] for i in idx) for k, v in out["items"].items()}
    return out


def from_arrays(name: str, images: np.ndarray, labels, num_classes: int, source: str, limit: int | None) -> ImageDataset:
    """Build a dataset from float images (N, H, W, C) in [0, 1]; statistics over all items."""
    if limit is not None:
        limit = check_interval("limit", name, limit, kind=int, low=1)
        images, labels = images[:limit], labels[:limit]
    x = torch.tensor(np.ascontiguousarray(images.transpose(0, 3, 1, 2)), dtype=torch.float32).clamp(0, 1)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    mean = tuple(float(v) for v in x.mean(dim=(0, 2, 3)))
    std = tuple(max(float(v), 1e-3) for v in x.std(dim=(0, 2, 3)))
    return ImageDataset(name, x, y, num_classes, mean, std, source)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    return resize(img, (size, size), anti_aliasing=True, preserve_range=True)


def _natural(size: int, name: str):
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


DATASETS: Registry[ImageDataset] = Registry("dataset")
DATASETS.register("natural-32", _natural(32, "natural-32"))
DATASETS.register("natural-64", _natural(64, "natural-64"))
DATASETS.register("lfw", lfw)
DATASETS.register("digits", digits)


def purchase_synthetic(*, n: int = 5000, features: int = 600, classes: int = 10,
                       characteristic: int = 60, rate: float = 0.4, base_rate: float = 0.05,
                       atypical: float = 0.6, data_seed: int = 0,
                       limit: int | None = None) -> ImageDataset:
    """Generated Purchase-100 stand-in (see :mod:`audit.purchase_synthetic`)."""
    from audit.purchase_synthetic import generate_purchase

    return generate_purchase(n=n, features=features, classes=classes,
                             characteristic=characteristic, rate=rate, base_rate=base_rate,
                             atypical=atypical, data_seed=data_seed, limit=limit)


def _register_loaders() -> None:
    from audit.data_loaders import cifar10, image_folder

    DATASETS.register("purchase-synthetic", purchase_synthetic,
                      summary="generated Purchase-style task: 600 binary features, 10 classes, atypical tail (membership leaks)")
    DATASETS.register("image-folder", image_folder)
    DATASETS.register("cifar10", cifar10)
    from audit.document_folder import document_folder
    from audit.documents import documents

    DATASETS.register("documents", documents,
                      summary="generated receipts and forms (Faker + PIL): tamper masks to segment, PSI masks, template groups")
    DATASETS.register("document-folder", document_folder,
                      summary="local document images with tamper masks (masks/) and optional PSI masks (psi/)")
    from audit.text_records import records

    DATASETS.register("records", records,
                      summary="generated per-client customer records (Faker) as byte tokens, with canary secrets")


_register_loaders()


def create_dataset(name: str, **params: Any) -> ImageDataset:
    """The registered dataset ``name``; unknown parameters are errors naming the key."""
    entry = DATASETS.get(name)
    import inspect

    allowed = [p for p in inspect.signature(entry.factory).parameters]
    check_known_keys(params, allowed, f"dataset {name!r}")
    return entry.factory(**params)
