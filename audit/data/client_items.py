"""Which items each client of an audit holds, and which no client holds: the server's
public split and an adversary's population data come from the latter (the harness's data
carving; :mod:`audit.harness` builds the run on it)."""

from __future__ import annotations

import torch

from audit.core.attack import LabelledData
from audit.core.config import AuditConfig
from audit.core.defense import Defense
from audit.core.errors import InvalidParameterError
from audit.core.updates import ClientData
from audit.data.client_partition import partition
from audit.data.dataset import ImageDataset

#: at most this many public items are handed to an adversary holding population data
MAX_POPULATION = 1024


def client_items(config: AuditConfig, dataset: ImageDataset) -> tuple[list[list[int]], list[int]]:
    """The items each client holds (``batch_size`` each) and the items no client holds, in
    order (the server's public split and pre-training draw from those).

    ``client_split`` "sequential" gives client k the items ``k*batch_size ...``; the other
    splits (:func:`audit.data.client_partition.partition`) give it the first ``batch_size``
    items of its part."""
    bs, k = config.batch_size, config.num_targets
    if config.client_split == "sequential":
        needed = bs * k
        if needed > len(dataset):
            raise InvalidParameterError(
                f"The audit needs batch_size x num_targets = {needed} images but dataset "
                f"{config.dataset!r} has {len(dataset)}. Got batch_size={bs}, "
                f"num_targets={k} instead."
            )
        return [list(range(i * bs, (i + 1) * bs)) for i in range(k)], list(range(needed, len(dataset)))
    parts = partition(dataset, k, config.client_split, alpha=config.client_split_alpha, seed=config.seed)
    small = [i for i, part in enumerate(parts) if len(part) < bs]
    if small:
        raise InvalidParameterError(
            f"The 'batch_size' parameter of the audit must be at most the items of every client: with "
            f"client_split={config.client_split!r}, client {small[0]} holds {len(parts[small[0]])}. "
            f"Got batch_size={bs} instead.")
    held = [part[:bs].tolist() for part in parts]
    taken = {i for items in held for i in items}
    return held, [i for i in range(len(dataset)) if i not in taken]


def client_data(dataset: ImageDataset, items) -> ClientData:
    idx = torch.as_tensor(list(items), dtype=torch.long)
    psi = None if dataset.psi_masks is None else dataset.psi_masks[idx]
    return ClientData(dataset.images[idx], dataset.labels[idx], psi)


def public_split(dataset: ImageDataset, defense: Defense, unused: list[int]) -> ClientData | None:
    """The first ``defense.public_examples`` items no client holds (the server's public split
    of the training data), or None when the defense wants none."""
    n = int(getattr(defense, "public_examples", 0) or 0)
    if n == 0:
        return None
    if n > len(unused):
        raise InvalidParameterError(
            f"Defense {defense.name!r} needs {n} public examples beyond the clients' "
            f"{len(dataset) - len(unused)}, but dataset {dataset.name!r} has {len(dataset)}. "
            f"Got public_size={n} instead.")
    return client_data(dataset, unused[:n])


def population(dataset: ImageDataset, unused: list[int] | None) -> LabelledData | None:
    """The adversary's population data: up to :data:`MAX_POPULATION` of the items no
    client holds (None when every item is a client's)."""
    idx = torch.as_tensor((unused or [])[:MAX_POPULATION], dtype=torch.long)
    return LabelledData(dataset.images[idx], dataset.labels[idx]) if len(idx) else None
