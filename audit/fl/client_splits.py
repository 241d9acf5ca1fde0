"""Non-IID client splits by label: the Dirichlet partition of Hsu, Qi and Brown (2019),
used by DEeR's code (``build_non_iid_by_dirichlet``, 12 clients, alpha 0.1).

For each class, the shares of its items that go to each client are drawn from
``Dirichlet(alpha, ..., alpha)``: a small ``alpha`` gives each client few classes.

Choices: each item of a class goes to a client drawn from the class's shares (cutting at
rounded cumulative shares would starve the same clients in every small class); the draw
is repeated (at most ``max_tries`` times, fresh draws from the same seeded generator) until
every client holds at least ``min_size`` items, so no client is empty. Every item is in
exactly one client. Deterministic under ``seed``. Returns sorted int64 index arrays.
"""

from __future__ import annotations

import numpy as np
import torch

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_positive


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
