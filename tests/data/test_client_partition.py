"""Client partitions: iid, dirichlet and column splits cover every item exactly once, are
deterministic under the seed, and the column split follows the data's own clients."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.core.errors import InvalidParameterError
from audit.data.client_partition import dirichlet_split, partition
from audit.data.dataset import from_arrays, from_texts


def _dataset(n: int, classes: int = 3, clients=None):
    ds = from_arrays("t", np.zeros((n, 2, 2, 1)), np.arange(n) % classes, classes, "test", None)
    return dataclasses.replace(ds, clients=None if clients is None else torch.as_tensor(clients))


def _is_partition(parts, n):
    joined = np.concatenate(parts)
    return len(joined) == n and np.array_equal(np.sort(joined), np.arange(n)) and all(
        p.dtype == np.int64 and np.array_equal(p, np.sort(p)) for p in parts)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 200), k=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_iid_covers_every_item_once_evenly_and_is_deterministic(n, k, seed):
    if k > n:
        with pytest.raises(InvalidParameterError, match=r"'num_clients'.*at most the"):
            partition(_dataset(n), k, "iid", seed=seed)
        return
    parts = partition(_dataset(n), k, "iid", seed=seed)
    assert len(parts) == k and _is_partition(parts, n)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    again = partition(_dataset(n), k, "iid", seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_iid_seeds_differ():
    a = partition(_dataset(100), 4, "iid", seed=0)
    b = partition(_dataset(100), 4, "iid", seed=1)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))


def test_dirichlet_is_dirichlet_split_of_the_labels():
    ds = _dataset(240, classes=6)
    parts = partition(ds, 5, "dirichlet", alpha=0.3, seed=7)
    assert _is_partition(parts, 240)
    expected = dirichlet_split(ds.labels, 5, alpha=0.3, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(parts, expected))
    again = partition(ds, 5, "dirichlet", alpha=0.3, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_column_follows_the_clients_of_the_data():
    clients = [2, 0, 2, 1, 0, 2]
    ds = _dataset(6, clients=clients)
    parts = partition(ds, 3, "column", seed=0)
    assert [p.tolist() for p in parts] == [[1, 4], [3], [0, 2, 5]]
    assert [p.tolist() for p in partition(ds, None, "column", seed=5)] == [[1, 4], [3], [0, 2, 5]]
    sub = ds.subset([0, 1, 2, 4])  # subset keeps the clients; client 1 is absent
    assert sub.clients.tolist() == [2, 0, 2, 0]
    assert [p.tolist() for p in partition(sub, 2, "column", seed=0)] == [[1, 3], [0, 2]]
    with pytest.raises(InvalidParameterError, match=r"'num_clients'.*the 2 distinct clients.*Got 3"):
        partition(sub, 3, "column", seed=0)


def test_text_datasets_split_iid_or_by_column_but_not_by_dirichlet():
    ds = from_texts("t", ["a", "b", "c", "d"], 8, "test", clients=torch.tensor([1, 1, 0, 0]))
    assert [p.tolist() for p in partition(ds, 2, "column", seed=0)] == [[2, 3], [0, 1]]
    assert _is_partition(partition(ds, 3, "iid", seed=0), 4)
    with pytest.raises(InvalidParameterError, match=r"'how'.*language-modeling.*'dirichlet'"):
        partition(ds, 2, "dirichlet", alpha=1.0, seed=0)


@pytest.mark.parametrize("args, kwargs, match", [
    ((4, "random"), {"seed": 0}, r"'how'.*'iid', 'dirichlet', 'column'.*'random'"),
    ((4, "dirichlet"), {"seed": 0}, r"'alpha'.*how='dirichlet'.*None"),
    ((4, "dirichlet"), {"alpha": 0.0, "seed": 0}, r"'alpha'.*0\.0"),
    ((4, "iid"), {"alpha": 0.5, "seed": 0}, r"'alpha'.*None unless.*0\.5"),
    ((0, "iid"), {"seed": 0}, r"'num_clients'.*Got 0"),
    ((None, "iid"), {"seed": 0}, r"'num_clients'.*Got None"),
    ((4, "iid"), {"seed": -1}, r"'seed'.*Got -1"),
    ((4, "column"), {"seed": 0}, r"'how'.*names no client.*'column'"),
])
def test_bad_requests_are_errors_naming_the_value(args, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        partition(_dataset(20), *args, **kwargs)
