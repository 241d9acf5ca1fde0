"""The adaptive (SNR-weighted) Inverting Gradients: its layer weights against closed forms,
and its matching loss on per-layer-clipped updates."""

import pytest
import torch

from attacks.snr_weighted_inverting_gradients import (
    SNRWeightedInvertingGradients,
    snr_layer_weights,
)
from audit.core.attack import ATTACKS


def test_weights_are_the_signal_share_of_each_layers_energy():
    g = torch.Generator().manual_seed(0)
    d = 10_000
    signal = torch.zeros(d)
    signal[0] = 3.0  # ||s||^2 = 9
    observed = {"a.weight": signal + 0.01 * torch.randn(d, generator=g),  # N = 1
                "b.weight": 0.1 * torch.randn(d, generator=g),  # pure noise, N = 100
                "c.weight": torch.ones(4)}  # no noise information: weight 1
    w = snr_layer_weights(observed, {"a": 0.01, "b": 0.1})
    # a: S ~ 9, N = 1 -> 0.9 (the noise energy estimate has relative sd sqrt(2/d) ~ 1.4%)
    assert w["a"] == pytest.approx(0.9, abs=0.03)
    # b: the observed energy is within noise of N: S ~ 0 (|S| <= 5 sd of N's estimate)
    assert w["b"] <= 0.07
    assert w["c"] == 1.0
    # the clip norm caps the signal: a layer clipped to 1 cannot carry S = 9
    capped = snr_layer_weights(observed, {"a": 0.01, "b": 0.1}, {"a": 1.0})
    assert capped["a"] == pytest.approx(0.5, abs=0.02)


def test_all_noise_falls_back_to_equal_weights():
    observed = {"a.weight": torch.zeros(5), "b.bias": torch.zeros(3)}
    assert snr_layer_weights(observed, {"a": 1.0, "b": 1.0}) == {"a": 1.0, "b": 1.0}


def test_per_layer_cosine_ignores_per_layer_scaling_and_drops_pure_noise_layers():
    attack = ATTACKS.create("snr-inverting-gradients", iterations=1)
    assert isinstance(attack, SNRWeightedInvertingGradients)
    g = torch.Generator().manual_seed(1)
    clean = {"a.weight": torch.randn(50, generator=g), "b.weight": torch.randn(50, generator=g)}
    observed = {"a.weight": 0.3 * clean["a.weight"], "b.weight": torch.randn(5000, generator=g)}

    class View:  # only what matching_loss reads
        defense_params = {"layer_noise_std": {"a": 0.0, "b": 1.0}}

    loss = attack.matching_loss(View(), observed)
    candidate = {"a.weight": clean["a.weight"], "b.weight": torch.randn(5000, generator=g)}
    # layer a matches up to its clipping factor (cosine 1); layer b is pure noise (weight ~0)
    assert float(loss(candidate, observed)) < 0.02
