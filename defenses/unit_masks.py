"""FedQSN's random masks over hidden units (arXiv 2508.18911, code github.com/zb2313/FedQSN).

A *hidden unit* of a layer is one of its outputs: masking unit ``j`` zeroes output ``j`` of the
layer for every input. In the stored weight that is one slice along the *unit dimension*:

* ``torch.nn.Linear`` (weight ``(out_features, in_features)``): rows, ``unit_dim = 0``, and
  ``bias[j]``;
* ``transformers.pytorch_utils.Conv1D`` (GPT-2; weight stored ``(in, out)``): columns,
  ``unit_dim = 1``, and ``bias[j]``;
* ``torch.nn.Embedding`` (table ``(vocab, d)``): column ``j`` (hidden dimension ``j`` of every
  token's vector), ``unit_dim = 1``, no bias;
* ``torch.nn.Conv2d`` (ViT's patch embedding, weight ``(out_ch, in_ch, kh, kw)``): output
  channels, ``unit_dim = 0``, and ``bias[j]``.

What the official code does (``code/FedSN_model_utils.py``, ``code/FedSN_gpt_model.py``,
``code/gpt_run.py``), read there:

* **where**: the output of the token embedding (GPT-2 ``wte``; not the position embedding),
  of the attention output projection (``attn.c_proj``) and of the FFN output projection
  (``mlp.c_proj``) of every block, one mask vector of ``n_embd`` units per layer. The mask
  multiplies the layer's *output activations* in ``forward`` (after the bias and dropout,
  before the residual sum); that is the same function as zeroing and scaling the unit's
  weight slice and bias entry, which :func:`apply_unit_mask` does.
* **server mask** (drawn once per run): **Bernoulli**, not an exact count: every unit is
  masked independently with probability ``p1`` (``np.random.choice([0, 1/(1-p1)],
  p=[p1, 1-p1])``), and the surviving units are scaled by ``1/(1-p1)``.
* **client mask** (drawn fresh for every client in every round, on top of the server mask,
  ``mask_type="xzb"``): ``int(p2 * N)`` of the server's *surviving* units are zeroed,
  uniformly without replacement, where ``N`` is the **total** size of the mask array (all
  units, server-masked ones included, and for the per-block masks all blocks together: the
  array is ``(n_layer, n_embd)``), capped at the number of survivors; the survivors are then
  scaled by ``1/(1-p2)`` on top of the server's ``1/(1-p1)``. The other ``mask_type``
  multiplies by an independent Bernoulli(``p2``) mask instead.

Choices of this module: :func:`server_mask` is Bernoulli by default (as the official code)
and exact-count (``int(p1 * n)`` units, uniformly) with ``exact=True``; :func:`client_mask`
counts from the total by default (``count="total"``, as the official code), or from the
survivors (``count="surviving"``), or draws Bernoulli (``count="bernoulli"``, the other
mask type); the count is ``int(p * n)`` in floating point, as the official code computes it
(so ``int(0.29 * 100) == 28``). Masks are boolean ``keep`` tensors (True: the unit is seen);
scaling is the caller's choice (:func:`inverted_dropout_scale` gives the official
``1/((1-p1)(1-p2))``). Randomness comes from an injected ``torch.Generator``.

Layers (:func:`fedqsn_layers`): the official code covers GPT-2 (and RoBERTa, LLaMA); for the
project's ``tiny-lm`` (GPT-2) the masked layers are those of the official GPT-2 model. For
``vit`` this module takes the analogues: the patch projection (the ViT's input embedding;
the class token and position embeddings stay unmasked, as GPT-2's position embedding does
in the official code), ``attention.o_proj`` and ``mlp.fc2`` (masked), and ``q/k/v/o_proj``,
``fc1``, ``fc2`` (quantized; RoBERTa's query/key/value/attention-output/intermediate/output
in the official code). A weight-level mask also reaches every module sharing that weight:
``tiny-lm`` ties its LM head to ``wte``, so masking ``wte``'s columns also removes those
hidden dimensions from the head (``LayerSpec.tied`` lists such modules); the official
activation mask leaves the head alone (it even unties it by replacing ``wte``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from audit.core.errors import invalid
from audit.core.validation import check_interval, check_options

COUNTS = ("total", "surviving", "bernoulli")


def _rate(name: str, owner: str, p) -> float:
    return check_interval(name, owner, p, low=0, high=1, closed="left")


def _generator(owner: str, generator) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise invalid("generator", owner, "a torch.Generator or None", generator)
    return generator


def _shape(owner: str, n_units) -> tuple[int, ...]:
    dims = (n_units,) if not isinstance(n_units, Sequence) or isinstance(n_units, str) else tuple(n_units)
    if not dims:
        raise invalid("n_units", owner, "an int >= 1 or a non-empty tuple of them", n_units)
    return tuple(check_interval("n_units", owner, d, kind=int, low=1) for d in dims)


def _uniform_subset(candidates: torch.Tensor, k: int, generator) -> torch.Tensor:
    """``k`` entries of ``candidates`` (1-D indices), uniformly without replacement."""
    order = torch.randperm(candidates.numel(), generator=generator)
    return candidates[order[:k].to(candidates.device)]


def server_mask(n_units, p1: float, generator: torch.Generator | None = None, *,
                exact: bool = False) -> torch.Tensor:
    """The server's ``keep`` mask (True: unit kept) over ``n_units`` (an int, or a shape such
    as ``(n_layers, n_units)``): each unit masked independently with probability ``p1``
    (the official code), or exactly ``int(p1 * numel)`` units with ``exact=True``."""
    owner = "server_mask"
    shape = _shape(owner, n_units)
    p1 = _rate("p1", owner, p1)
    generator = _generator(owner, generator)
    if not exact:
        return ~(torch.rand(shape, generator=generator, dtype=torch.float64) < p1)
    keep = torch.ones(math.prod(shape), dtype=torch.bool)
    keep[_uniform_subset(torch.arange(keep.numel()), int(p1 * keep.numel()), generator)] = False
    return keep.reshape(shape)


def client_mask(server_keep: torch.Tensor, p2: float, generator: torch.Generator | None = None, *,
                count: str = "total") -> torch.Tensor:
    """A client's ``keep`` mask, a subset of ``server_keep``: ``int(p2 * server_keep.numel())``
    surviving units zeroed (``count="total"``, the official code; at most all survivors),
    ``int(p2 * n_surviving)`` (``"surviving"``) or each survivor with probability ``p2``
    (``"bernoulli"``). Draw it again for every client and round."""
    owner = "client_mask"
    if not isinstance(server_keep, torch.Tensor) or server_keep.dtype != torch.bool or server_keep.dim() < 1:
        raise invalid("server_keep", owner, "a bool tensor of at least 1 dimension", server_keep)
    p2 = _rate("p2", owner, p2)
    generator = _generator(owner, generator)
    count = check_options("count", owner, count, COUNTS)
    if count == "bernoulli":
        drop = torch.rand(server_keep.shape, generator=generator, dtype=torch.float64) < p2
        return server_keep & ~drop.to(server_keep.device)
    surviving = server_keep.reshape(-1).nonzero().squeeze(1)
    n = server_keep.numel() if count == "total" else surviving.numel()
    keep = server_keep.clone().reshape(-1)
    keep[_uniform_subset(surviving, min(int(p2 * n), surviving.numel()), generator)] = False
    return keep.reshape(server_keep.shape)


def inverted_dropout_scale(*rates: float) -> float:
    """``prod 1/(1-p)`` over ``rates``: the official proxy scales survivors by
    ``1/((1-p1)(1-p2))``; ``inverted_dropout_scale(p2)`` is the client mask's share alone."""
    scale = 1.0
    for i, p in enumerate(rates):
        scale /= 1.0 - _rate(f"rates[{i}]", "inverted_dropout_scale", p)
    return scale


def apply_unit_mask(weight: torch.Tensor, bias: torch.Tensor | None, keep: torch.Tensor, scale: float,
                    unit_dim: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """New ``(weight, bias)`` with the masked units' slices (along ``unit_dim``) and bias
    entries set to 0 and the kept ones multiplied by ``scale`` (``1/(1-p2)``: inverted dropout)."""
    owner = "apply_unit_mask"
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point() or weight.dim() < 1:
        raise invalid("weight", owner, "a floating-point tensor", type(weight).__name__)
    unit_dim = check_interval("unit_dim", owner, unit_dim, kind=int, low=-weight.dim(), high=weight.dim() - 1)
    unit_dim %= weight.dim()
    n = weight.shape[unit_dim]
    if not isinstance(keep, torch.Tensor) or keep.dtype != torch.bool or keep.shape != (n,):
        raise invalid("keep", owner, f"a bool tensor of shape ({n},)", keep)
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != (n,)):
        raise invalid("bias", owner, f"None or a tensor of shape ({n},)", bias)
    scale = check_interval("scale", owner, scale, low=0, closed="right")
    if math.isinf(scale):
        raise invalid("scale", owner, "a finite float > 0", scale)
    view = [1] * weight.dim()
    view[unit_dim] = n
    kept = keep.to(weight.device).reshape(view)
    new_weight = torch.where(kept, weight * scale, torch.zeros((), dtype=weight.dtype, device=weight.device))
    new_bias = None
    if bias is not None:
        zero = torch.zeros((), dtype=bias.dtype, device=bias.device)
        new_bias = torch.where(keep.to(bias.device), bias * scale, zero)
    return new_weight, new_bias


# -- which layers of the project's transformers FedQSN masks and quantizes ---------------------------


@dataclass(frozen=True)
class LayerSpec:
    """One layer FedQSN touches: its weight parameter ``name`` (the key of
    :func:`fedqsn_layers`), module, kind, role, unit dimension, bias parameter name, whether its
    units are masked and whether its weight is quantized, and other modules holding the same
    weight (``tied``: GPT-2's LM head shares the token embedding)."""

    name: str
    module: str
    kind: str  # linear | conv1d | embedding | conv2d
    role: str  # embedding | attention-output | ffn-output | attention | ffn
    unit_dim: int
    n_units: int
    bias: str | None
    masked: bool
    quantized: bool
    tied: tuple[str, ...] = ()


# role, module-name pattern (GPT-2; ViT of transformers 5; ViT before), masked, quantized
_BLOCK_ROLES = (
    ("attention-output", r"(attn\.c_proj|attention\.o_proj|attention\.output\.dense)", True, True),
    ("ffn-output", r"(mlp\.c_proj|mlp\.fc2|layer\.\d+\.output\.dense)", True, True),
    ("attention", r"(attn\.c_attn|attention\.[qkv]_proj|attention\.attention\.(query|key|value))", False, True),
    ("ffn", r"(mlp\.c_fc|mlp\.fc1|intermediate\.dense)", False, True),
)


def _kind(module: nn.Module) -> tuple[str, int, int] | None:
    """``(kind, unit_dim, n_units)`` of a layer with hidden units, else None."""
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, nn.Linear):
        return "linear", 0, module.out_features
    if isinstance(module, Conv1D):
        return "conv1d", 1, module.nf
    if isinstance(module, nn.Embedding):
        return "embedding", 1, module.embedding_dim
    if isinstance(module, nn.Conv2d):
        return "conv2d", 0, module.out_channels
    return None


def _spec(model: nn.Module, name: str, module: nn.Module, role: str, masked: bool, quantized: bool) -> LayerSpec:
    if _kind(module) is None and isinstance(getattr(module, "base_layer", None), nn.Module):
        name, module = f"{name}.base_layer", module.base_layer  # peft LoRA wrapper
    found = _kind(module)
    if found is None:
        raise RuntimeError(f"fedqsn_layers: {name!r} ({type(module).__name__}) has no hidden units")
    kind, unit_dim, n_units = found
    tied = tuple(other for other, m in model.named_modules() if m is not module and any(
        p is module.weight for p in m.parameters(recurse=False)))
    bias = f"{name}.bias" if getattr(module, "bias", None) is not None else None
    return LayerSpec(f"{name}.weight", name, kind, role, unit_dim, n_units, bias, masked, quantized, tied)


def _input_embedding(model: nn.Module) -> tuple[str, nn.Module]:
    """The token embedding (GPT-2) or patch projection (ViT) of the transformers model inside."""
    names = {id(m): n for n, m in model.named_modules()}
    for module in model.modules():
        getter = getattr(module, "get_input_embeddings", None)
        if getter is None:
            continue
        emb = getter()
        if _kind(emb) is None:  # ViTPatchEmbeddings: its Conv2d projection
            emb = next((m for m in emb.modules() if isinstance(m, nn.Conv2d)), emb)
        return names[id(emb)], emb
    raise RuntimeError("fedqsn_layers: no transformers model (get_input_embeddings) inside this model")


def fedqsn_layers(model: nn.Module) -> dict[str, LayerSpec]:
    """The layers of ``model`` (``tiny-lm`` of :mod:`audit.models.text_lm`, ``vit`` of
    :mod:`audit.models.vit_lora`) that FedQSN masks (input embedding, attention-output and
    FFN-output projections: ``masked``) and quantizes (attention and FFN weight matrices:
    ``quantized``), keyed by weight parameter name, in model order."""
    emb_name, emb = _input_embedding(model)
    specs = {s.name: s for s in [_spec(model, emb_name, emb, "embedding", True, False)]}
    for name, module in model.named_modules():
        for role, pattern, masked, quantized in _BLOCK_ROLES:
            if re.search(rf"(^|\.){pattern}$", name):
                spec = _spec(model, name, module, role, masked, quantized)
                specs[spec.name] = spec
                break
    counts = {role: sum(s.role == role for s in specs.values()) for role, *_ in _BLOCK_ROLES}
    blocks = counts["attention-output"]
    if not blocks or counts["ffn-output"] != blocks or counts["ffn"] != blocks or counts["attention"] < blocks:
        raise RuntimeError(f"fedqsn_layers: unsupported layout, found {counts} layers by role")
    return specs
