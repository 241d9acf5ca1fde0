"""DR-Encoder's gradient autoencoder: layout round trip, stage-1 statistics, and what an
autoencoder trained on i.i.d. synthetic gradients can keep (about 1/ratio of the energy)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.core.errors import InvalidParameterError
from defenses.gradient_autoencoder import (
    layer_statistics,
    layout_from_statistics,
    synthetic_gradients,
    train_autoencoder,
)

SHAPES = {"a": (4, 16), "b": (48, 4), "c": (8, 8)}


def _gradient(seed: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: scale * (torch.randn(s, generator=g) + i) for i, (n, s) in enumerate(SHAPES.items())}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), block=st.integers(2, 300), scale=st.floats(1e-3, 1e3))
def test_layout_round_trip_is_exact(seed, block, scale):
    grad = _gradient(seed, scale)
    layout = layout_from_statistics(SHAPES, [layer_statistics(grad)], block=block)
    blocks = layout.flatten(grad)
    assert blocks.shape == (layout.blocks, block)
    back = layout.unflatten(blocks)
    assert all(torch.allclose(back[n], grad[n], rtol=1e-5, atol=1e-6 * scale) for n in SHAPES)


def test_statistics_and_standardisation():
    grad = _gradient(0)
    stats = layer_statistics(grad)
    for n, t in grad.items():
        assert stats[n].mean == pytest.approx(float(t.mean()), abs=1e-6)
        assert stats[n].std == pytest.approx(float(t.std(unbiased=False)), rel=1e-6)
    layout = layout_from_statistics(SHAPES, [stats], block=64)
    flat = layout.flatten(grad).reshape(-1)[: layout.size]
    assert float(flat.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(flat.std(unbiased=False)) == pytest.approx(1.0, rel=1e-4)


def test_autoencoder_on_iid_synthetic_gradients_keeps_about_one_over_ratio():
    """For i.i.d. standard data the best rank-k reconstruction of a block of d keeps k/d
    of the energy; the trained autoencoder cannot beat that by much, on synthetic draws or
    on a real-looking gradient."""
    stats = [layer_statistics(_gradient(s)) for s in range(4)]
    layout = layout_from_statistics(SHAPES, stats, block=64)
    ae, info = train_autoencoder(layout, stats, ratio=16, steps=400, samples=256, lr=1e-3)
    assert info["code"] == 4 and info["compression"] == pytest.approx(
        layout.size / (layout.blocks * 4))
    test = synthetic_gradients(layout, stats, 64, generator=torch.Generator().manual_seed(9))
    x = test.reshape(-1, 64)
    with torch.no_grad():
        err = float(((ae(x) - x) ** 2).sum() / (x ** 2).sum())
    assert 1 - 2.0 / 16 < err < 1.0 + 0.05


def test_bad_sizes_are_rejected():
    stats = [layer_statistics(_gradient(0))]
    layout = layout_from_statistics(SHAPES, stats, block=8)
    with pytest.raises(InvalidParameterError, match="ratio"):
        train_autoencoder(layout, stats, ratio=16)
    with pytest.raises(InvalidParameterError, match="statistics"):
        layout_from_statistics(SHAPES, [], block=8)
