"""Layer-wise Gaussian mechanism: per-layer L2 clipping and noise, with per-layer budgets.

A *layer* is the set of trainable parameters owned by one module (``enc1.conv1``: its
weight and bias). Layer l of an update is clipped to L2 norm ``C_l`` and gets
``N(0, (z_l C_l)^2)`` noise per coordinate. One release of all layers is a composition of
Gaussian mechanisms; Gaussians compose exactly (Dong, Roth, Su 2019: mu-GDP with
``mu^2 = sum_l mu_l^2``, ``mu_l = 1/z_l``), so the layers together are as private as one
Gaussian with noise multiplier ``z`` where ``1/z^2 = sum_l 1/z_l^2``.

A budget split is therefore a set of *shares* ``w_l >= 0`` summing to 1 of ``1/z^2``:
``z_l = z / sqrt(w_l)``. Shares are to a Gaussian what per-layer epsilons under basic
composition are to pure DP, without basic composition's slack. The calibration of ``z``
and every reported epsilon (per layer and total) come from the accountant
(:mod:`audit.privacy.accounting.accountants`), never from this arithmetic; a test composes the per-layer
events in dp_accounting and checks they give the claimed total.

Choices: per-layer clip norms ``C_l = C / sqrt(L)`` ("equal", so the whole update has norm
at most C, as flat clipping would) or ``C_l = C sqrt(d_l / d)`` ("dimension", proportional
to the layer's share of the parameters).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_options, check_positive
from defenses.gaussian_mechanism import add_gaussian_noise, clip_l2

LAYER_CLIPS = ("equal", "dimension")


@dataclass(frozen=True)
class LayerBudget:
    """One layer's part of the mechanism."""

    layer: str
    parameters: tuple[str, ...]
    share: float  # of 1/z^2 (shares sum to 1)
    noise_multiplier: float  # z_l = z / sqrt(share)
    clip_norm: float  # C_l

    @property
    def noise_std(self) -> float:
        """Standard deviation of the noise on each coordinate of this layer."""
        return self.noise_multiplier * self.clip_norm


def layer_budgets(
    layers: Mapping[str, list[str]],
    shares: Mapping[str, float],
    *,
    noise_multiplier: float,
    clip_norm: float,
    numels: Mapping[str, int],
    layer_clip: str = "equal",
) -> list[LayerBudget]:
    """Per-layer clip norms and noise multipliers for ``shares`` of a Gaussian with
    noise multiplier ``noise_multiplier`` (the whole update's)."""
    check_positive("noise_multiplier", "layer_budgets", noise_multiplier)
    check_positive("clip_norm", "layer_budgets", clip_norm)
    layer_clip = check_options("layer_clip", "layer_budgets", layer_clip, LAYER_CLIPS)
    if set(shares) != set(layers):
        raise InvalidParameterError(
            "The 'shares' parameter must have one entry per layer. Got "
            f"{sorted(shares)!r} for layers {sorted(layers)!r} instead.")
    total_share = sum(shares.values())
    if any(w <= 0 for w in shares.values()) or not math.isclose(total_share, 1.0, rel_tol=1e-6):
        raise InvalidParameterError(
            f"The 'shares' parameter must be positive and sum to 1. Got {dict(shares)!r} "
            "instead.")
    d_layer = {name: sum(int(numels[p]) for p in params) for name, params in layers.items()}
    d_total = sum(d_layer.values())
    budgets = []
    for name, params in layers.items():
        clip = (clip_norm / math.sqrt(len(layers)) if layer_clip == "equal"
                else clip_norm * math.sqrt(d_layer[name] / d_total))
        budgets.append(LayerBudget(name, tuple(params), float(shares[name]),
                                   noise_multiplier / math.sqrt(shares[name]), clip))
    return budgets


def clip_and_noise(
    tensors: Mapping[str, torch.Tensor],
    budgets: list[LayerBudget],
    *,
    generator: torch.Generator,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Each layer clipped to its ``C_l`` and noised with ``z_l C_l``; also the layers'
    norms before clipping. Every tensor must belong to exactly one layer."""
    covered = [p for b in budgets for p in b.parameters]
    if sorted(covered) != sorted(tensors):
        raise InvalidParameterError(
            "The update's tensors must be exactly the layers' parameters. Got "
            f"{sorted(set(tensors) ^ set(covered))!r} in one but not the other instead.")
    out: dict[str, torch.Tensor] = {}
    norms: dict[str, float] = {}
    for b in budgets:
        part = {p: tensors[p] for p in b.parameters}
        clipped, norms[b.layer] = clip_l2(part, b.clip_norm)
        out.update(add_gaussian_noise(clipped, b.noise_std, generator=generator))
    return {name: out[name] for name in tensors}, norms

