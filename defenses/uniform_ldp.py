"""``uniform-ldp``: layer-wise local DP with the budget spread evenly over layers — the
baseline FedRE (arXiv 2505.04889) is compared against at the same total epsilon.

Same mechanism, accountant and claim as ``fedre`` (:mod:`defenses.layerwise_ldp`): per-layer
clipping to ``C_l`` and Gaussian noise, every layer the same share ``1/L`` of the budget,
so ``z_l = z sqrt(L)``; the server takes the plain example-weighted mean.
"""

from __future__ import annotations

from defenses.layerwise_ldp import LayerwiseLDP


class UniformLDP(LayerwiseLDP):
    """Layer-wise local DP, even budget over layers, mean aggregation."""

    name = "uniform-ldp"
