"""Gradient pruning, the defense of Zhu, Liu, Han 2019 ("Deep leakage from gradients",
NeurIPS, Section 5): each client sets the share ``prune_ratio`` of its gradient entries
with the smallest magnitude to zero before sending, and the server averages.

It is top-k sparsification with ``k = n - floor(prune_ratio * n)``, so it reuses
:class:`defenses.top_k.MagnitudeSparsifier` (same client side, same scopes, same inner
FedSGD/FedAvg, same claim) and only counts differently: ``prune_ratio`` is what the paper
reports, ``fraction`` what top-k users set.

Choices of this project, where the paper leaves room (see :mod:`defenses.top_k` for the
shared ones: per-tensor scope by default, no error feedback, no DP claim):

* ``floor(prune_ratio * n)`` entries pruned, so ``prune_ratio=0`` prunes nothing and every
  ratio below 1 keeps at least one entry of each tensor in scope; the pruned entries are
  exactly those outside the kept ``k`` largest (ties at the cut as :func:`torch.topk`).
* ``prune_ratio`` in [0, 1): pruning everything would send nothing.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from audit.core.validation import check_interval
from defenses.fedavg import FedAvg
from defenses.top_k import MagnitudeSparsifier, product_count


def pruned_count(prune_ratio: float, n: int) -> int:
    """Entries pruned of ``n`` at ``prune_ratio``: ``floor(prune_ratio * n)``, at most n - 1."""
    return min(max(n - 1, 0), math.floor(product_count(prune_ratio, n)))


class GradientPruning(MagnitudeSparsifier):
    """Zhu et al. 2019's defense: prune the ``prune_ratio`` share of smallest-magnitude
    entries of each client's update (per tensor or over the update)."""

    name: ClassVar[str] = "gradient-pruning"
    own_keys: ClassVar[tuple[str, ...]] = ("prune_ratio", "scope")

    def __init__(self, inner: FedAvg, *, prune_ratio: float = 0.5, scope: str = "tensor") -> None:
        super().__init__(inner, scope=scope)
        self.prune_ratio = check_interval("prune_ratio", self.name, prune_ratio, low=0, high=1,
                                          closed="left")

    def kept(self, n: int) -> int:
        return n - pruned_count(self.prune_ratio, n)

    def params(self) -> dict[str, Any]:
        return {**self.inner_params(), "prune_ratio": self.prune_ratio, "scope": self.scope}


__all__ = ["GradientPruning", "pruned_count"]
