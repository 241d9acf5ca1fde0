"""FedQSN (arXiv 2508.18911, EMNLP 2025; code github.com/zb2313/FedQSN): model privacy in
federated fine-tuning — clients never receive the global model, only a randomly masked,
quantized *proxy*.

Per run, the server draws a mask over the hidden units of the input embedding, the
attention-output and the FFN-output layers (:func:`defenses.unit_masks.fedqsn_layers`;
rate ``p1``, :func:`defenses.unit_masks.server_mask`). Per round and per client it builds
the proxy (:meth:`FedQSN.client_model`):

1. the global model's attention and FFN weight matrices quantized block-wise with the NF
   codebook of ``bits`` (2**bits + 1 levels, :mod:`defenses.nf_quantizer`);
2. a fresh client mask on top of the server's (rate ``p2``, exactly ``int(p2 n)`` units
   zeroed, :func:`defenses.unit_masks.client_mask`), kept units scaled by
   ``1 / ((1 - p1)(1 - p2))`` (inverted dropout).

The client fully fine-tunes its proxy (every parameter, the local training of
:attr:`local_training`) and returns it quantized with ``return_bits`` (4 in the official
code); the server averages the returned models into the next global model.

Masks (``mask_mode``; :mod:`defenses.proxy_model`):

* ``"activation"`` (default; the official code): the proxy holds the whole quantized weights
  and multiplies the masked layers' *output activations* by the mask in ``forward``
  (forward hooks here). Masked units get no gradient, so a client returns them unchanged.
  The client holds every weight — the audit's point: dropping the mask gives it the
  quantized global model.
* ``"weights"`` (this project's hardened variant): the mask is folded into the shipped
  weights (masked units' slices and bias entries zero, kept ones scaled) and not shipped.
  The server divides the returned kept units by the scale and averages each unit over the
  clients that held it; a unit no client held keeps the global value.

No DP claim: FedQSN protects the model from the clients, not the clients' data, and the
claim says so.

Choices where the paper and code leave room: the client mask draws ``int(p2 n)`` per layer
(the official code pools all blocks of one kind into one count); the server mask is
Bernoulli (as the official code) or exact (``exact_server_mask``); masks are drawn from a
generator seeded by ``seed``; the returned model is quantized on the same layers, block
``block``; quantities of tied weights (GPT-2's LM head shares the token embedding) follow
the embedding in ``"weights"`` mode (the official activation mask leaves the head alone).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from audit.core.claims import PrivacyClaim
from audit.core.defense import FederationSchedule, KeyedDefense
from audit.core.errors import InvalidParameterError
from audit.core.updates import ClientData, LocalTraining, ModelUpdate
from audit.core.validation import check_bool, check_interval, check_options
from defenses.nf_quantizer import MAX_BITS, MIN_BITS, quantize_dequantize
from defenses.proxy_model import MaskedLayer, ShippedProxy
from defenses.unit_masks import (
    LayerSpec,
    apply_unit_mask,
    client_mask,
    fedqsn_layers,
    inverted_dropout_scale,
    server_mask,
)

MASK_MODES = ("activation", "weights")


def _rate(name: str, owner: str, value: Any) -> float:
    return check_interval(name, owner, value, low=0, high=1, closed="left")


class FedQSN(KeyedDefense):
    """Masked, quantized proxy models for the clients; plain averaging of returned models."""

    name: ClassVar[str] = "fedqsn"
    default_threat_model: ClassVar[str] = "proxy-client"
    keys: ClassVar[tuple[str, ...]] = ("local_steps", "lr", "momentum", "p1", "p2", "bits",
                                       "return_bits", "block", "mask_mode", "exact_server_mask",
                                       "seed")

    def __init__(self, *, local_steps: int = 2, lr: float = 0.1, momentum: float = 0.0,
                 p1: float = 0.2, p2: float = 0.2, bits: int = 4, return_bits: int = 4,
                 block: int = 64, mask_mode: str = "activation", exact_server_mask: bool = False,
                 seed: int = 0) -> None:
        owner = self.name
        self._training = self.delta_training(local_steps, lr, momentum)
        self.p1 = _rate("p1", owner, p1)
        self.p2 = _rate("p2", owner, p2)
        self.bits = check_interval("bits", owner, bits, kind=int, low=MIN_BITS, high=MAX_BITS)
        self.return_bits = check_interval("return_bits", owner, return_bits, kind=int, low=MIN_BITS,
                                          high=MAX_BITS)
        self.block = check_interval("block", owner, block, kind=int, low=1)
        self.mask_mode = check_options("mask_mode", owner, mask_mode, MASK_MODES)
        self.exact_server_mask = check_bool("exact_server_mask", owner, exact_server_mask)
        self.seed = check_interval("seed", owner, seed, kind=int, low=0)
        self.scale = inverted_dropout_scale(self.p1, self.p2)
        self.layers: dict[str, LayerSpec] = {}
        self.server_keep: dict[str, torch.Tensor] = {}
        self._shipped: dict[tuple[int, int], ShippedProxy] = {}
        self._client_keeps: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self._model: nn.Module | None = None

    def params(self) -> dict[str, Any]:
        return {"local_steps": self._training.steps, "lr": self._training.lr,
                "momentum": self._training.momentum, "p1": self.p1, "p2": self.p2,
                "bits": self.bits, "return_bits": self.return_bits, "block": self.block,
                "mask_mode": self.mask_mode, "exact_server_mask": self.exact_server_mask,
                "seed": self.seed}

    def public_state(self) -> dict[str, Any]:
        """:meth:`params` plus the masked and quantized layers (public: the architecture)."""
        return {**self.params(), "scale": self.scale,
                "masked_layers": tuple(n for n, s in self.layers.items() if s.masked),
                "quantized_layers": tuple(n for n, s in self.layers.items() if s.quantized)}

    def server_state(self) -> dict[str, Any]:
        """The server mask (``server_keep``: weight name -> bool keep vector)."""
        return {"server_keep": dict(self.server_keep)}

    # -- server ---------------------------------------------------------------------------

    def setup_server(self, *, model: nn.Module, public: ClientData | None,
                     training: LocalTraining | None = None) -> None:
        try:
            self.layers = fedqsn_layers(model)
        except RuntimeError as e:
            raise InvalidParameterError(
                f"Defense {self.name!r} needs a transformer with an input embedding, attention "
                f"and FFN layers (model 'tiny-lm' or 'vit'). Got {type(model).__name__} "
                f"instead ({e}).") from None
        self._model = model
        self._gen = torch.Generator().manual_seed(self.seed)
        self.server_keep = {n: server_mask(s.n_units, self.p1, self._gen, exact=self.exact_server_mask)
                            for n, s in self.layers.items() if s.masked}
        self._shipped = {}
        if training is not None:
            self._training = training

    def prepare(self, schedule: FederationSchedule) -> None:
        self._shipped = {}

    # -- the proxy ------------------------------------------------------------------------

    def _quantized(self, state: dict[str, torch.Tensor], bits: int) -> dict[str, torch.Tensor]:
        return {n: (quantize_dequantize(t.detach(), bits, self.block)
                    if n in self.layers and self.layers[n].quantized else t.detach().clone())
                for n, t in state.items()}

    def client_model(self, model: nn.Module, *, client_id: int, round: int) -> tuple[nn.Module, Any]:
        proxy = copy.deepcopy(model)
        params = dict(proxy.named_parameters())
        state = self._quantized({n: p for n, p in params.items()}, self.bits)
        keeps = {n: client_mask(self.server_keep[n], self.p2, self._gen) for n in self.server_keep}
        masked = []
        for n, keep in keeps.items():
            spec = self.layers[n]
            if self.mask_mode == "weights":
                w, b = apply_unit_mask(state[n], state.get(spec.bias) if spec.bias else None, keep,
                                       self.scale, spec.unit_dim)
                state[n] = w
                if spec.bias:
                    state[spec.bias] = b
            masked.append(MaskedLayer(n, spec.bias, spec.unit_dim, self.scale,
                                      keep.clone() if self.mask_mode == "activation" else None))
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(state[n])
        if self.mask_mode == "activation":
            modules = dict(proxy.named_modules())
            for n, keep in keeps.items():
                spec = self.layers[n]
                factor = keep.to(next(iter(params.values())).dtype) * self.scale
                modules[spec.module].register_forward_hook(_unit_mask_hook(factor, spec.kind))
        shipped = ShippedProxy(round, client_id, {n: t.clone() for n, t in state.items()},
                               tuple(masked), tuple(n for n, s in self.layers.items() if s.quantized),
                               self.mask_mode, self.bits, self.block)
        self._shipped[(client_id, round)] = shipped
        self._client_keeps[(client_id, round)] = keeps
        return proxy, shipped

    # -- data flow ------------------------------------------------------------------------

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        """The returned model, quantized with ``return_bits`` (sent as its difference from the
        proxy, as every update of the project)."""
        shipped = self._shipped[(update.client_id, update.round)]
        returned = {n: shipped.state[n].to(t.device) - t for n, t in update.tensors.items()}
        returned = self._quantized(returned, self.return_bits)
        tensors = {n: shipped.state[n].to(t.device) - returned[n] for n, t in update.tensors.items()}
        return ModelUpdate(update.kind, tensors, client_id=update.client_id, round=update.round,
                           num_examples=update.num_examples, info=dict(update.info))

    def server_side(self, observations: Sequence[ModelUpdate], *,
                    generator: torch.Generator) -> ModelUpdate:
        """Average the returned models; the update applied is ``global - average``."""
        assert self._model is not None
        current = {n: p.detach() for n, p in self._model.named_parameters()}
        returned = []
        for o in observations:
            shipped = self._shipped[(o.client_id, o.round)]
            returned.append({n: shipped.state[n].to(t.device) - t for n, t in o.tensors.items()})
        names = list(observations[0].tensors)
        average = {n: sum(r[n] for r in returned) / len(returned) for n in names}
        if self.mask_mode == "weights":
            self._average_units(average, returned, observations, current)
        r = observations[0].round
        for o in observations:  # the server has no further use for the proxies of this round
            self._shipped.pop((o.client_id, r), None)
            self._client_keeps.pop((o.client_id, r), None)
        return ModelUpdate(observations[0].kind, {n: current[n] - average[n] for n in names}, round=r,
                           num_examples=sum(o.num_examples for o in observations))

    def _average_units(self, average, returned, observations, current) -> None:
        """Weights mode: each masked unit averaged over the clients that held it (scale
        undone); a unit nobody held keeps the global value."""
        for n, spec in self.layers.items():
            if not spec.masked or n not in average:
                continue
            keeps = [self._keep_of(o, n) for o in observations]
            shape = [1] * current[n].dim()
            shape[spec.unit_dim] = -1
            for name in (n, spec.bias):
                if name is None or name not in average:
                    continue
                view = shape if name == n else [-1]
                total = torch.zeros_like(current[name])
                count = torch.zeros(spec.n_units, device=current[name].device)
                for r, keep in zip(returned, keeps):
                    k = keep.to(total.device)
                    total += torch.where(k.reshape(view), r[name] / self.scale, torch.zeros_like(total))
                    count += k
                held = (count > 0).reshape(view)
                average[name] = torch.where(held, total / count.clamp_min(1).reshape(view), current[name])

    def _keep_of(self, observation: ModelUpdate, name: str) -> torch.Tensor:
        return self._client_keeps[(observation.client_id, observation.round)][name]

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        return PrivacyClaim.none(
            "fedqsn makes no differential-privacy claim: it hides the global model from the "
            "clients (model privacy), not the clients' data from the server. What a client "
            "can extract of the global model from its proxies is measured instead.")


def _unit_mask_hook(factor: torch.Tensor, kind: str):
    """A forward hook multiplying a layer's output units by ``factor`` (the official
    activation mask): last dimension, or the channel dimension of a Conv2d."""
    def hook(module: nn.Module, inputs, output):
        f = factor.to(output.device, output.dtype)
        return output * (f.reshape(-1, 1, 1) if kind == "conv2d" else f)
    return hook
