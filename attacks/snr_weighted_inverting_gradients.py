"""Adaptive Inverting Gradients against layer-wise DP: per-layer cosine matching weighted
by each layer's signal-to-noise ratio.

An adversary who knows how a layer-wise defense (``fedre``, ``uniform-ldp``) perturbs each
layer — its clip norm ``C_l`` and noise standard deviation ``sigma_l``, which are public —
should trust the layers the noise spares and ignore those it drowns. This attack is
Inverting Gradients (Geiping et al. 2020; :mod:`attacks.inverting_gradients`: signed Adam,
TV prior, box constraint, batched restarts) with the matching loss

    sum_l w_l (1 - cos(g_l(x), o_l)) / sum_l w_l

over layers l (the parameters owned by one module), where ``o_l`` is the observed layer
and ``w_l = S_l / (S_l + N_l)`` is the share of signal in its energy: ``N_l = d_l sigma_l^2``
(noise energy of a layer of ``d_l`` coordinates) and ``S_l = clip(||o_l||^2 - N_l, 0, C_l^2)``
(the observed energy minus the expected noise energy, at most the clipped signal's). Per
layer, cosine is blind to the per-layer clipping factors that bend a global cosine.

Choices (the project's): the weights are fixed once from the observation (not re-estimated
during the optimisation); without per-layer noise information (an undefended update) every
layer weighs 1; if every weight is 0 (all noise), the weights fall back to 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from attacks.inverting_gradients import InvertingGradients
from audit.core.attack import AttackView


def snr_layer_weights(observed: Mapping[str, torch.Tensor],
                      noise_std: Mapping[str, float],
                      clip_norm: Mapping[str, float] | None = None) -> dict[str, float]:
    """``w_l = S_l / (S_l + N_l)`` per layer (see the module docstring)."""
    layers: dict[str, list[str]] = {}
    for name in observed:
        layers.setdefault(name.rpartition(".")[0], []).append(name)
    weights = {}
    for layer, names in layers.items():
        energy = float(sum((observed[n].double() ** 2).sum() for n in names))
        d = sum(observed[n].numel() for n in names)
        noise = d * float(noise_std.get(layer, 0.0)) ** 2
        signal = max(energy - noise, 0.0)
        if clip_norm and layer in clip_norm:
            signal = min(signal, float(clip_norm[layer]) ** 2)
        weights[layer] = 1.0 if noise == 0.0 else signal / (signal + noise)
    if not any(w > 0 for w in weights.values()):
        weights = {k: 1.0 for k in weights}
    return weights


class SNRWeightedInvertingGradients(InvertingGradients):
    """Inverting Gradients with a per-layer, SNR-weighted cosine loss."""

    name = "snr-inverting-gradients"
    family = "gradient-inversion"

    def matching_loss(self, view: AttackView, observed) -> Callable[[Any, Any], torch.Tensor]:
        state = view.defense_params or {}
        weights = snr_layer_weights(observed, state.get("layer_noise_std", {}),
                                    state.get("layer_clip_norm"))
        groups = [(w, [n for n in observed if n.rpartition(".")[0] == layer])
                  for layer, w in weights.items() if w > 0]
        total = sum(w for w, _ in groups)

        def loss(candidate, target) -> torch.Tensor:
            out = 0.0
            for w, names in groups:
                dot = sum((candidate[n] * target[n]).sum() for n in names)
                na = torch.sqrt(sum((candidate[n] ** 2).sum() for n in names))
                nb = torch.sqrt(sum((target[n] ** 2).sum() for n in names))
                out = out + w * (1.0 - dot / (na * nb + 1e-20))
            return out / total

        return loss
