"""What DR-Encoder's stage-1 statistics give away (``../shared/specs/defenses.md``: "the
per-layer mean/std sent in stage 1 carry no noise").

A client's statistics for a layer of ``n`` entries are the mean ``m`` and the (population)
standard deviation ``s`` of its update's entries, so the server learns the layer's update
norm exactly: ``||g_l||^2 = n (s^2 + m^2)``, for every layer and stage-1 round, with no
noise: a per-layer norm profile of the client's update, the quantity DP clipping exists to
hide (the norm grows with the client's loss, e.g. on rare or mislabelled data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from defenses.gradient_autoencoder import LayerStats


def update_norms(statistics: Mapping[str, LayerStats],
                 shapes: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Each layer's update L2 norm, recovered exactly from its mean and std."""
    return {n: math.sqrt(math.prod(shapes[n]) * (s.std ** 2 + s.mean ** 2))
            for n, s in statistics.items()}
