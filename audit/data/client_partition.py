"""Which items each federated client holds: IID, Dirichlet by label, or the data's own column.

:func:`partition` splits a dataset's item indices among ``num_clients`` clients in one of
three ways (``how``); every item is in exactly one client, and the result is deterministic
under ``seed``. The project's own choices:

* ``"iid"``: a ``default_rng(seed)`` permutation of the items cut into ``num_clients``
  contiguous parts whose sizes differ by at most one (:func:`numpy.array_split`), so no
  client is empty (``num_clients`` may not exceed the number of items).
* ``"dirichlet"``: :func:`dirichlet_split` on the labels (classification only): the
  non-IID partition of Hsu, Qi and Brown (2019), used by DEeR's code
  (``build_non_iid_by_dirichlet``, 12 clients, alpha 0.1). For each class, the shares of
  its items that go to each client are drawn from ``Dirichlet(alpha, ..., alpha)``: a small
  ``alpha`` gives each client few classes. Each item of a class goes to a client drawn from
  the class's shares (cutting at rounded cumulative shares would starve the same clients in
  every small class); the draw is repeated (at most ``max_tries`` times, fresh draws from
  the same seeded generator) until every client holds at least ``min_size`` items.
* ``"column"``: the clients the data names itself (``dataset.clients``, set by a loader's
  client column, e.g. ``table``'s ``client_column=``): client ``k`` holds the items of the
  ``k``-th distinct id present, ids in increasing order. ``num_clients`` must equal the
  number of distinct ids present (``None`` takes that number); ``seed`` is not used.

Each part is a sorted int64 index array into the dataset.
"""

from __future__ import annotations

import numpy as np
import torch

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval, check_options, check_positive

HOWS = ("iid", "dirichlet", "column")


def dirichlet_split(labels, num_clients: int, *, alpha: float, seed: int, min_size: int = 1,
                    max_tries: int = 1000) -> list[np.ndarray]:
    """Split item indices among ``num_clients`` with per-class Dirichlet(``alpha``) shares."""
    y = np.asarray(torch.as_tensor(labels).detach().cpu()).reshape(-1)
    num_clients = check_interval("num_clients", "dirichlet_split", num_clients, kind=int, low=1)
    alpha = check_positive("alpha", "dirichlet_split", alpha)
    min_size = check_interval("min_size", "dirichlet_split", min_size, kind=int, low=0)
    seed = check_interval("seed", "dirichlet_split", seed, kind=int, low=0)
    if num_clients * min_size > len(y):
        raise InvalidParameterError(
            f"The 'num_clients' parameter of dirichlet_split needs num_clients x min_size <= "
            f"{len(y)} items. Got num_clients={num_clients}, min_size={min_size} instead.")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for c in classes:
            items = np.flatnonzero(y == c)
            shares = rng.dirichlet(np.full(num_clients, alpha))
            owner = rng.choice(num_clients, size=len(items), p=shares)
            for k in range(num_clients):
                parts[k].append(items[owner == k])
        out = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise InvalidParameterError(
        f"dirichlet_split found no split with at least min_size={min_size} items per client in "
        f"{max_tries} draws (alpha={alpha}, {num_clients} clients, {len(y)} items); lower "
        "min_size or raise alpha.")


def _iid(n: int, num_clients: int, seed: int) -> list[np.ndarray]:
    if num_clients > n:
        raise invalid("num_clients", "partition", f"at most the {n} items of the dataset (how='iid')",
                      num_clients)
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(p).astype(np.int64) for p in np.array_split(order, num_clients)]


def _column(dataset, num_clients: int | None) -> list[np.ndarray]:
    clients = getattr(dataset, "clients", None)
    if clients is None:
        raise invalid("how", "partition",
                      f"'iid' or 'dirichlet' for dataset {getattr(dataset, 'name', '?')!r}, which names "
                      "no client of its items (load it with a client column, e.g. table's client_column=)",
                      "column")
    ids = np.asarray(torch.as_tensor(clients).detach().cpu()).reshape(-1)
    present = np.unique(ids)
    if num_clients is not None and num_clients != len(present):
        raise invalid("num_clients", "partition",
                      f"the {len(present)} distinct clients of the dataset's client column (how='column')",
                      num_clients)
    return [np.flatnonzero(ids == c).astype(np.int64) for c in present]


def partition(dataset, num_clients: int | None, how: str, *, alpha: float | None = None,
              seed: int) -> list[np.ndarray]:
    """The item indices of each of ``num_clients`` clients, split ``how`` (see the module
    docstring); ``alpha`` is the Dirichlet concentration (``how="dirichlet"`` only)."""
    how = check_options("how", "partition", how, HOWS)
    seed = check_interval("seed", "partition", seed, kind=int, low=0)
    if how != "dirichlet" and alpha is not None:
        raise invalid("alpha", "partition", "None unless how='dirichlet'", alpha)
    if how == "column":
        if num_clients is not None:
            num_clients = check_interval("num_clients", "partition", num_clients, kind=int, low=1)
        return _column(dataset, num_clients)
    num_clients = check_interval("num_clients", "partition", num_clients, kind=int, low=1)
    if how == "iid":
        return _iid(len(dataset), num_clients, seed)
    if alpha is None:
        raise invalid("alpha", "partition", "a float in the range (0, inf] (how='dirichlet')", alpha)
    if getattr(dataset, "task", "classification") != "classification":
        raise invalid("how", "partition",
                      f"'iid' or 'column' for a {dataset.task} dataset (Dirichlet splits class labels)",
                      how)
    return dirichlet_split(dataset.labels, num_clients, alpha=alpha, seed=seed)
