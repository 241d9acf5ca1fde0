"""Top-k sparsification of client updates (a compression baseline used as a defense).

Each client keeps the ``k`` entries of largest magnitude of its update, sets the others to
zero and sends the result; the server averages what arrives (the inner FedSGD/FedAvg).
This is the *gradient pruning* defense of Zhu, Liu, Han 2019 ("Deep leakage from
gradients", NeurIPS, Section 5: gradient compression and sparsification), written as the
fraction kept instead of the ratio pruned (:mod:`defenses.gradient_pruning` is the same
mechanism with the ratio pruned as its parameter); top-k sparsification as a compressor
for communication goes back to Aji and Heafield 2017 ("Sparse communication for
distributed gradient descent", EMNLP) and Lin et al. 2018 ("Deep gradient compression",
ICLR).

Wraps an inner FedSGD (default) or FedAvg (``base="fedavg"``, ``local_steps``): with
FedAvg the client's model delta after its local steps is sparsified.

Choices of this project, where the papers leave room:

* ``scope="tensor"`` (default): each parameter tensor keeps its own top-k, so every layer
  (biases, the classifier head) keeps some entries, as the common implementations of Zhu et
  al.'s defense prune per layer; ``scope="update"``: one top-k over the whole update
  (all tensors concatenated), the global variant.
* ``k = ceil(fraction * n)`` of the ``n`` entries in scope, at least 1, so ``fraction=1``
  keeps everything and a small tensor keeps one entry. Exactly ``k`` entries are kept even
  when magnitudes tie at the cut (ties fall as :func:`torch.topk` orders them).
* No error feedback / residual memory (Stich et al. 2018; Lin et al. 2018): clients are
  stateless, each observation a function of the current update only, which is what Zhu
  et al. evaluate; it costs utility at small fractions.
* The kept entries are sent exactly (no quantisation of values, no index encoding): the
  observation is the sparse update itself.
* No differential-privacy claim: what is sent is a deterministic function of the client's
  data, and the claim says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from audit.core.claims import PrivacyClaim
from audit.core.defense import FederationSchedule
from audit.core.updates import ModelUpdate
from audit.core.validation import check_interval, check_options
from defenses.fedavg import FedAvg, WrappingDefense

#: where the k largest entries are taken: per parameter tensor, or over the whole update
SCOPES = ("tensor", "update")


def product_count(share: float, n: int) -> float:
    """``share * n`` rounded at 9 decimals, so that ``0.7 * 10`` counts as 7, not
    7.000000000000001, before it is rounded up or down to a count of entries."""
    return round(share * n, 9)


def top_k_count(fraction: float, n: int) -> int:
    """Entries kept of ``n`` at ``fraction``: ``ceil(fraction * n)``, at least 1 (for n > 0)."""
    return min(n, max(1, math.ceil(product_count(fraction, n)))) if n else 0


def keep_largest(t: torch.Tensor, k: int) -> torch.Tensor:
    """``t`` with every entry but its ``k`` of largest magnitude set to zero (exactly ``k``
    kept, ties at the cut broken as :func:`torch.topk` orders them)."""
    flat = t.reshape(-1)
    if k >= flat.numel():
        return t.clone()
    out = torch.zeros_like(flat)
    if k > 0:
        idx = flat.abs().topk(k, sorted=False).indices
        out[idx] = flat[idx]
    return out.view_as(t)


def sparsify(tensors: Mapping[str, torch.Tensor], count: Callable[[int], int], *,
             scope: str = "tensor") -> dict[str, torch.Tensor]:
    """``tensors`` with only the ``count(n)`` entries of largest magnitude kept, ``n`` the
    entries of each tensor (``scope="tensor"``) or of all tensors together (``"update"``)."""
    check_options("scope", "sparsify", scope, SCOPES)
    if scope == "tensor":
        return {name: keep_largest(t, count(t.numel())) for name, t in tensors.items()}
    names = list(tensors)
    if not names:
        return {}
    flat = torch.cat([tensors[n].reshape(-1) for n in names])
    kept = keep_largest(flat, count(flat.numel()))
    out, start = {}, 0
    for name in names:
        t = tensors[name]
        out[name] = kept[start:start + t.numel()].view_as(t).to(t.dtype)
        start += t.numel()
    return out


class MagnitudeSparsifier(WrappingDefense):
    """Keep the entries of largest magnitude of each client's update (in ``scope``), around
    an inner FedSGD/FedAvg; a subclass says how many (:meth:`kept`)."""

    scope: str

    def __init__(self, inner: FedAvg, *, scope: str = "tensor") -> None:
        self.inner = inner
        self.scope = check_options("scope", self.name, scope, SCOPES)

    def kept(self, n: int) -> int:
        """Entries kept of ``n`` in scope."""
        raise NotImplementedError

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        update = self.inner.client_side(update, generator=generator)
        sparse = sparsify(update.tensors, self.kept, scope=self.scope)
        total = sum(t.numel() for t in sparse.values())
        nonzero = sum(int(torch.count_nonzero(t)) for t in sparse.values())
        return update.with_tensors(sparse, nonzero_fraction=nonzero / max(total, 1))

    def server_side(self, observations: Sequence[ModelUpdate], *,
                    generator: torch.Generator) -> ModelUpdate:
        return self.inner.server_side(observations, generator=generator)

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        return PrivacyClaim.none(
            f"{self.name} makes no differential-privacy claim: each client sends the largest "
            "entries of its update unchanged, a deterministic function of its data; "
            "sparsification lowers what an attack can match, it bounds nothing.")


class TopK(MagnitudeSparsifier):
    """Top-k sparsification: each client sends the ``ceil(fraction * n)`` entries of
    largest magnitude of its update (per tensor or over the update), zeros elsewhere."""

    name: ClassVar[str] = "top-k-sparsification"
    own_keys: ClassVar[tuple[str, ...]] = ("fraction", "scope")

    def __init__(self, inner: FedAvg, *, fraction: float = 0.1, scope: str = "tensor") -> None:
        super().__init__(inner, scope=scope)
        self.fraction = check_interval("fraction", self.name, fraction, low=0, high=1, closed="right")

    def kept(self, n: int) -> int:
        return top_k_count(self.fraction, n)

    def params(self) -> dict[str, Any]:
        return {**self.inner_params(), "fraction": self.fraction, "scope": self.scope}


__all__ = ["SCOPES", "MagnitudeSparsifier", "TopK", "keep_largest", "product_count", "sparsify", "top_k_count"]
