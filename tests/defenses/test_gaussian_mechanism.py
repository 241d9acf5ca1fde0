"""Clipping bounds the sensitivity; noise has the requested scale and is fresh per call."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.core.errors import InvalidParameterError
from defenses.gaussian_mechanism import add_gaussian_noise, clip_l2, global_l2_norm


@settings(max_examples=50, deadline=None)
@given(
    scale=st.floats(1e-6, 1e6),
    clip=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**31 - 1),
)
def test_clipped_norm_never_exceeds_clip(scale, clip, seed):
    g = torch.Generator().manual_seed(seed)
    tensors = {"a": scale * torch.randn(3, 4, generator=g), "b": scale * torch.randn(5, generator=g)}
    clipped, norm = clip_l2(tensors, clip)
    assert float(global_l2_norm(clipped)) <= clip * (1 + 1e-5)
    assert norm == pytest.approx(float(global_l2_norm(tensors)), rel=1e-6)
    if norm <= clip:  # small updates pass unchanged
        assert all(torch.equal(clipped[k], tensors[k]) for k in tensors)


def test_non_finite_update_is_rejected():
    with pytest.raises(InvalidParameterError, match="finite"):
        clip_l2({"a": torch.tensor([1.0, float("nan")])}, 1.0)


def test_noise_std_within_confidence_interval():
    # 200k draws: the sample std lies within +-1% of 0.7 except with probability ~1e-9
    gen = torch.Generator().manual_seed(0)
    noised = add_gaussian_noise({"a": torch.zeros(200_000)}, 0.7, generator=gen)["a"]
    assert float(noised.std()) == pytest.approx(0.7, rel=0.01)
    assert abs(float(noised.mean())) < 6 * 0.7 / math.sqrt(200_000)


def test_noise_is_fresh_on_every_call():
    gen = torch.Generator().manual_seed(0)
    a = add_gaussian_noise({"a": torch.zeros(100)}, 1.0, generator=gen)["a"]
    b = add_gaussian_noise({"a": torch.zeros(100)}, 1.0, generator=gen)["a"]
    assert not torch.equal(a, b)
