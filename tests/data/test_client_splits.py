"""Dirichlet label splits: a partition, deterministic, no empty client, skew grows as alpha
falls."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.data.client_partition import dirichlet_split
from audit.core.errors import InvalidParameterError


@settings(max_examples=40, deadline=None)
@given(n=st.integers(20, 300), k=st.integers(1, 12), classes=st.integers(1, 10),
       alpha=st.floats(0.05, 100), seed=st.integers(0, 1000))
def test_every_item_in_exactly_one_client_and_none_empty(n, k, classes, alpha, seed):
    labels = np.arange(n) % classes
    try:
        parts = dirichlet_split(labels, k, alpha=alpha, seed=seed)
    except InvalidParameterError as exc:
        # by design the split gives up (after 1000 draws) only where skewed draws leave some
        # client empty most of the time: small alpha and few items a client (found by
        # hypothesis: alpha 0.5, 10 clients, 20 items; alpha 0.125, 7 clients, 36 items)
        assert alpha < 1 and n < 20 * k and "min_size" in str(exc), exc
        return
    assert len(parts) == k and min(len(p) for p in parts) >= 1
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    again = dirichlet_split(labels, k, alpha=alpha, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def _classes_per_client(alpha: float) -> float:
    labels = np.repeat(np.arange(10), 120)
    parts = dirichlet_split(labels, 12, alpha=alpha, seed=0, min_size=5)
    # classes holding at least 5% of a client's items
    return float(np.mean([(np.bincount(labels[p], minlength=10) >= 0.05 * len(p)).sum()
                          for p in parts]))


def test_small_alpha_gives_few_classes_per_client():
    assert _classes_per_client(0.1) <= 3.5
    assert _classes_per_client(100.0) >= 9.0


def test_impossible_request_is_a_clear_error():
    with pytest.raises(InvalidParameterError, match="num_clients"):
        dirichlet_split(np.zeros(10), 6, alpha=0.1, seed=0, min_size=2)
    with pytest.raises(InvalidParameterError, match="alpha"):
        dirichlet_split(np.zeros(10), 2, alpha=0, seed=0)
