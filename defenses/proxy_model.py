"""What a FedQSN client receives instead of the global model: a *shipped proxy* (the data an
extraction adversary collects; :mod:`defenses.fedqsn` builds it, :mod:`attacks.proxy_extraction`
reads it).

Two ways to ship the masks (``mask_mode``):

* ``"activation"`` (the official code, ``FedSN_gpt_model.py``): the client's model holds the
  *whole* quantized weights and multiplies the masked layers' output activations by the
  mask vector (0 for a masked unit, ``scale`` for a kept one) in ``forward``. The client
  therefore holds the mask too: ``MaskedLayer.keep`` is given.
* ``"weights"`` (a hardened variant this project adds): the mask is folded into the shipped
  weights — a masked unit's weight slice and bias entry are zero, a kept unit's are
  multiplied by ``scale`` — and the mask itself is not shipped: ``MaskedLayer.keep`` is None
  (an adversary must infer it, e.g. from all-zero slices).

``state`` holds every parameter of the client's model as it receives it (dequantized values
of the quantized weights; the masks folded in with ``"weights"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskedLayer:
    """One masked layer of a shipped proxy."""

    weight: str  # the weight parameter's name
    bias: str | None  # the bias parameter's name, if any
    unit_dim: int  # dimension of ``weight`` that indexes hidden units
    scale: float  # factor of a kept unit, 1 / ((1 - p1) (1 - p2))
    keep: torch.Tensor | None  # (n_units,) bool, True = kept; None when not shipped ("weights")


@dataclass(frozen=True)
class ShippedProxy:
    """What one client received in one round."""

    round: int
    client_id: int
    state: dict[str, torch.Tensor]
    masked: tuple[MaskedLayer, ...]
    quantized: tuple[str, ...]  # names of the weights quantized before shipping
    mask_mode: str  # "activation" | "weights"
    bits: int  # bits of the NF codebook (2**bits + 1 levels)
    block: int  # absmax block size of the quantizer
