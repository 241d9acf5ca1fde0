"""Hypothesis strategies for property-testing DP mechanisms.

Neighbouring pairs of datasets (add/remove one example, replace one example, one client's
whole update), clip norms, noise multipliers and tensor shapes. Datasets are float64
tensors of shape (n, d); a client update is a dict of named tensors.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

RELATIONS = ("add-remove", "replace-one", "client-update")


@st.composite
def shapes(draw, *, max_dims: int = 3, max_side: int = 6) -> tuple[int, ...]:
    """A tensor shape with 1..max_dims dimensions of size 1..max_side."""
    return tuple(draw(st.lists(st.integers(1, max_side), min_size=1, max_size=max_dims)))


def clip_norms() -> st.SearchStrategy[float]:
    """Clip norms from 1e-3 to 1e3."""
    return st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)


def noise_multipliers() -> st.SearchStrategy[float]:
    """Noise multipliers from 0.3 to 20 (the range accountants handle quickly)."""
    return st.floats(0.3, 20.0, allow_nan=False, allow_infinity=False)


def _tensor(draw, shape, scale: float) -> torch.Tensor:
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape, generator=g, dtype=torch.float64)


@st.composite
def neighbouring_datasets(draw, *, relation: str | None = None, max_rows: int = 8, max_dim: int = 5):
    """``(D, D', relation)``: D' is D with one row removed or replaced (or D with one added)."""
    relation = relation or draw(st.sampled_from(RELATIONS[:2]))
    n = draw(st.integers(1, max_rows))
    d = draw(st.integers(1, max_dim))
    scale = draw(st.floats(1e-3, 1e3))
    data = _tensor(draw, (n, d), scale)
    i = draw(st.integers(0, n - 1))
    if relation == "add-remove":
        other = torch.cat([data[:i], data[i + 1 :]])
        return (data, other, relation) if draw(st.booleans()) else (other, data, relation)
    replaced = data.clone()
    replaced[i] = _tensor(draw, (d,), scale)
    return data, replaced, relation


@st.composite
def neighbouring_updates(draw, *, max_layers: int = 3):
    """``(u, u')``: two updates of one client (named tensors of equal shapes), any scale."""
    layers = draw(st.integers(1, max_layers))
    names = [f"layer{i}" for i in range(layers)]
    layer_shapes = [draw(shapes()) for _ in names]
    scale = draw(st.floats(1e-4, 1e4))
    u = {n: _tensor(draw, s, scale) for n, s in zip(names, layer_shapes)}
    v = {n: _tensor(draw, s, scale) for n, s in zip(names, layer_shapes)}
    return u, v
