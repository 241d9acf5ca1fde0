"""The dataset type every room shares: items (N, C, H, W) in [0, 1], labels, statistics.

:class:`ImageDataset` also carries text (token ids), tabular rows, segmentation masks and
each item's client (``clients``, from a user's client column); :func:`from_arrays` builds
one from float arrays, with statistics over all items; :func:`from_texts` one of byte
tokens for language modelling (:class:`audit.models.text_lm.ByteTokenizer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from audit.core.validation import check_interval
from audit.models.text_lm import ByteTokenizer


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
    #: see :mod:`audit.models.text_lm`)
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
    #: (N,) int client of each item, dense codes 0..K-1 (a loader's client column; the
    #: original names in ``meta["client_names"]``), for :mod:`audit.data.client_partition`'s
    #: ``"column"`` split; None when the data names no clients
    clients: torch.Tensor | None = None

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
            _subset_meta(self.meta, idx.tolist()),
            None if self.clients is None else self.clients[idx])


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


def from_texts(name: str, texts, length: int, source: str, **fields: Any) -> ImageDataset:
    """A language-modelling dataset of ``texts``: :meth:`ByteTokenizer.batch_encode` ids (N,
    ``length``) as ``images``, next-token targets as ``labels``; ``fields`` (``groups``,
    ``clients``, ``meta``) are passed on."""
    tokenizer = ByteTokenizer()
    ids, targets = tokenizer.batch_encode(list(texts), length)
    return ImageDataset(name, ids, targets, tokenizer.vocab_size, (0.0,), (1.0,), source,
                        modality="text", task="language-modeling", **fields)
