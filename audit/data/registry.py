"""The dataset registry: ``--dataset NAME`` and ``create_dataset``.

Entries come from the ``fedaudit.datasets`` entry points (fedaudit's own in
:mod:`audit.data.catalog`); see :mod:`audit.core.registry`.
"""

from __future__ import annotations

import inspect
from typing import Any

from audit.core.registry import Registry
from audit.core.validation import check_known_keys
from audit.data.dataset import ImageDataset

DATASETS: Registry[ImageDataset] = Registry("dataset", group="fedaudit.datasets", kind=ImageDataset)


def create_dataset(name: str, **params: Any) -> ImageDataset:
    """The registered dataset ``name``; unknown parameters are errors naming the key."""
    entry = DATASETS.get(name)
    allowed = [p for p in inspect.signature(entry.factory).parameters]
    check_known_keys(params, allowed, f"dataset {name!r}")
    return entry.factory(**params)
