"""QSGD stochastic quantisation of client updates (Alistarh, Grubic, Li, Tomioka, Vojnovic
2017, "QSGD: Communication-efficient SGD via gradient quantization and encoding",
NeurIPS), a compression baseline used as a defense.

For a vector ``v`` (one bucket, below) and ``s`` levels, entry ``i`` is sent as
(the paper's Section 3.1)::

    Q_s(v)_i = ||v||_2 * sign(v_i) * xi_i / s,   l = floor(s |v_i| / ||v||_2),
    xi_i = l + 1 with probability s |v_i| / ||v||_2 - l, else l,

so every entry lies on the grid ``{-s..s} * ||v||_2 / s``, ``E[Q_s(v)] = v`` (unbiased) and
``E||Q_s(v) - v||^2 <= min(n / s^2, sqrt(n) / s) ||v||^2`` (its Lemma 3.1). The server
averages the dequantised observations (the inner FedSGD/FedAvg); with ``base="fedavg"`` the
client's model delta after its local steps is quantised.

Choices of this project, where the paper leaves room:

* ``bits`` in 1..16 is the width of a magnitude level: ``s = 2**bits - 1`` levels above 0
  (``bits=1``: ``s = 1``, the paper's ternary ``{-||v||, 0, ||v||}`` case); the sign is one
  more bit per non-zero entry and the norm one float per bucket. Only the values are
  simulated, not the paper's Elias coding of them.
* Buckets (the paper quantises ``d`` consecutive coordinates at a time, each bucket with its
  own norm, to bound the variance): every parameter tensor is flattened and cut into buckets
  of ``bucket_size`` consecutive entries (the last one shorter); default 512, this
  project's choice; ``bucket_size=0``: one bucket, one norm, per tensor. A bucket never
  spans two tensors.
* The L2 norm (the paper's choice; its max-norm variant is not offered) is computed and the
  randomness drawn in float64, the result cast back to the update's dtype; a zero bucket is
  sent as zeros.
* The uniforms come from the generator the simulation passes (seeded per run), one per
  entry.
* No differential-privacy claim: the quantisation noise is unbiased, scaled by the update's
  own norm and sent with that norm, so it bounds nothing; the claim says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from audit.core.claims import PrivacyClaim
from audit.core.defense import FederationSchedule
from audit.core.updates import ModelUpdate
from audit.core.validation import check_interval
from defenses.fedavg import FedAvg, WrappingDefense

MIN_BITS, MAX_BITS = 1, 16
DEFAULT_BUCKET = 512


def levels(bits: int) -> int:
    """The number ``s`` of non-zero magnitude levels for ``bits``: ``2**bits - 1``."""
    bits = check_interval("bits", "qsgd", bits, kind=int, low=MIN_BITS, high=MAX_BITS)
    return 2 ** bits - 1


def _buckets(flat: torch.Tensor, bucket_size: int) -> torch.Tensor:
    """``flat`` as rows of ``bucket_size`` entries, zero-padded (zeros change no norm)."""
    n = flat.numel()
    size = n if bucket_size == 0 or bucket_size >= n else bucket_size
    rows = -(-n // size)
    padded = torch.zeros(rows * size, dtype=flat.dtype, device=flat.device)
    padded[:n] = flat
    return padded.view(rows, size)


def quantize(t: torch.Tensor, s: int, *, bucket_size: int = DEFAULT_BUCKET,
             generator: torch.Generator) -> torch.Tensor:
    """``Q_s`` of ``t`` (module docstring): buckets of ``bucket_size`` consecutive entries
    of the flattened tensor (0: the whole tensor), each quantised with its own L2 norm."""
    n = t.numel()
    if n == 0:
        return t.clone()
    rows = _buckets(t.detach().reshape(-1).double(), bucket_size)
    norm = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    scaled = (rows.abs() / norm.clamp_min(torch.finfo(torch.float64).tiny) * s).clamp(0, s)
    low = scaled.floor()
    u = torch.rand(rows.shape, generator=generator, device=generator.device,
                   dtype=torch.float64).to(rows.device)
    xi = low + (u < scaled - low).double()
    q = rows.sign() * norm * xi / s
    return q.reshape(-1)[:n].view_as(t).to(t.dtype)


def quantize_update(tensors: Mapping[str, torch.Tensor], s: int, *, bucket_size: int = DEFAULT_BUCKET,
                    generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Every tensor of an update quantised by :func:`quantize` (in the mapping's order)."""
    return {name: quantize(t, s, bucket_size=bucket_size, generator=generator)
            for name, t in tensors.items()}


class QSGD(WrappingDefense):
    """QSGD: each client sends its update stochastically quantised to ``2**bits - 1`` levels
    per bucket norm (unbiased); the server averages, around an inner FedSGD/FedAvg."""

    name: ClassVar[str] = "qsgd"
    own_keys: ClassVar[tuple[str, ...]] = ("bits", "bucket_size")

    def __init__(self, inner: FedAvg, *, bits: int = 4, bucket_size: int = DEFAULT_BUCKET) -> None:
        self.inner = inner
        self.bits = check_interval("bits", self.name, bits, kind=int, low=MIN_BITS, high=MAX_BITS)
        self.bucket_size = check_interval("bucket_size", self.name, bucket_size, kind=int, low=0)
        self.levels = levels(self.bits)

    def params(self) -> dict[str, Any]:
        return {**self.inner_params(), "bits": self.bits, "bucket_size": self.bucket_size}

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        update = self.inner.client_side(update, generator=generator)
        q = quantize_update(update.tensors, self.levels, bucket_size=self.bucket_size,
                            generator=generator)
        return update.with_tensors(q)

    def server_side(self, observations: Sequence[ModelUpdate], *,
                    generator: torch.Generator) -> ModelUpdate:
        return self.inner.server_side(observations, generator=generator)

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        return PrivacyClaim.none(
            f"{self.name} makes no differential-privacy claim: its quantisation noise is "
            "unbiased, scaled by the update's own norm and sent with it, so it bounds no "
            "client's influence on what the server sees.")


__all__ = ["DEFAULT_BUCKET", "MAX_BITS", "MIN_BITS", "QSGD", "levels", "quantize", "quantize_update"]
