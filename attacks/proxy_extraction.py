"""Model extraction against FedQSN (arXiv 2508.18911, EMNLP 2025; code zb2313/FedQSN): a
coalition of clients estimates the global model from the proxies it received
(``../shared/specs/attacks.md``, "Model extraction (against FedQSN)").

FedQSN never sends clients the global model, only a *proxy*: some hidden units masked
(a server mask drawn once at rate ``p1``, and a fresh client mask per client and round at
rate ``p2``, survivors scaled by ``1/((1-p1)(1-p2))``) and the attention/FFN weights
quantized with a block-wise NF codebook (:mod:`defenses.unit_masks`,
:mod:`defenses.nf_quantizer`). The paper shows protection only as the poor accuracy of a
single proxy; it has no extraction attack. This module adds one, as the spec asks: pool the
proxies of the coalition, undo the masks and the scaling, detect always-masked units, and
(optionally) fine-tune the estimate on the coalition's own data.

Threat model: a coalition of ``k`` participating, honest-but-curious clients that share
what they received. It observes the :class:`defenses.proxy_model.ShippedProxy` objects of
its members (every round a member was sampled), nothing sent to other clients, never the
server mask; it knows the architecture, the defense's public parameters (carried by the
proxy: ``scale``, ``bits``, ``block``, the masked layers and their ``unit_dim``) and its
members' own data (for :func:`fine_tune`). Trivial baseline for the metrics: one proxy as
its client uses it, :func:`effective_state` (the mask folded into the weights in both modes),
scored by :func:`extraction_metrics`. (In ``"activation"`` mode ``proxy.state`` itself is not
a baseline: it is already the whole quantized model.)

What the two shipping modes (``ShippedProxy.mask_mode``) let out:

* ``"activation"`` (the official code): the client's model holds the **whole** quantized
  weights and applies the mask to activations in ``forward``. The mask hides nothing from a
  client that reads its own state dict: a masked unit's weights (server-masked ones included)
  are right there. :func:`estimate_global` returns the latest proxy's state as is (the
  quantized global model of that round) and reports every unit as seen. The masks
  (``MaskedLayer.keep``) are not needed.
* ``"weights"`` (the project's hardened variant): the mask is folded into the weights and not
  shipped. A masked unit is detected as an all-zero weight slice along ``unit_dim`` *and*
  a zero bias entry (GPT-2's biases start at zero, so the bias alone says nothing); a kept
  unit's slice and bias entry are divided by ``MaskedLayer.scale``. A kept unit whose weights
  and bias are truly all zero is indistinguishable from a masked one; its estimate is zero
  either way (it may be filled with a stale value, see below). If a proxy does ship ``keep``
  in this mode, the given mask is used instead of the inferred one.

Choices of this module (documented, not from the paper):

* **most recent first**: the global model changes every round, so a unit takes its value
  from the latest round in which some member of the coalition saw it kept;
* **within a round**: the members' independent client masks are combined (a unit kept in
  any proxy of the round is known); when several proxies keep it, their descaled values
  are averaged (computed in float64). With quantization *before* masking (the official
  order) they are identical; with masking before quantization the absmax blocks of
  different clients differ, and averaging reduces the quantization error a little;
* **stale values**: a unit not kept in any proxy of the latest round takes its value from
  the most recent earlier round where it was kept (:func:`unit_rounds` says which round each
  unit's value comes from); it is as old as that round;
* **never kept**: a unit the coalition never saw kept is "always masked" (server-masked, or
  unlucky) and is filled with zeros (what the proxy itself gives it); ``seen`` is False;
* **unmasked parameters** (position embedding, norms, ``c_attn``, ``c_fc``, ...): the latest
  proxy's values. Quantized weights arrive dequantized; the codebook is deterministic (no
  dithering), so every proxy of a round holds the same quantized tensor and there is
  nothing more to undo: the error stays within the codebook bound
  (:func:`defenses.nf_quantizer.max_roundtrip_error`). "Latest proxy" is the one of the
  latest round with the smallest ``client_id``;
* **tied weights**: a state entry that is not a masked layer's weight or bias but equals a
  masked weight of the same proxy (same storage or the same values; GPT-2's LM head tied to
  ``wte``) is a tie: it gets that weight's estimate. :func:`extraction_metrics` counts a tied
  parameter once;
* all proxies must share one ``mask_mode`` (a run's setting); the estimate keeps the dtype
  and device of the latest proxy's tensors;
* :func:`fine_tune` is deterministic full-batch SGD (:func:`audit.fl.simulation.local_update`
  with a model-delta :class:`audit.core.updates.LocalTraining`), so it takes no generator.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from audit.core.attack import Attack, AttackResult
from audit.core.errors import invalid
from audit.fl.simulation import local_update
from audit.core.updates import ClientData, LocalTraining, UpdateKind
from audit.core.validation import check_interval, check_positive
from defenses.proxy_model import MaskedLayer, ShippedProxy
from defenses.unit_masks import apply_unit_mask

__all__ = ["effective_state", "estimate_global", "extraction_metrics", "fine_tune", "infer_keep", "unit_rounds"]

MODES = ("activation", "weights")


# -- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layer:
    weight: str
    bias: str | None
    unit_dim: int


def _units_first(t: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """``t`` as (n_units, rest): one row per hidden unit."""
    d = unit_dim % t.dim()
    return t.movedim(d, 0).reshape(t.shape[d], -1)


def _unit_view(keep: torch.Tensor, like: torch.Tensor, unit_dim: int) -> torch.Tensor:
    view = [1] * like.dim()
    view[unit_dim % like.dim()] = keep.numel()
    return keep.to(like.device).reshape(view)


def infer_keep(state: Mapping[str, torch.Tensor], layer: MaskedLayer) -> torch.Tensor:
    """The ``keep`` mask of ``layer`` read off a ``"weights"``-mode state: a unit is masked
    when its weight slice along ``unit_dim`` is all zero and its bias entry (if any) is zero."""
    zero = (_units_first(state[layer.weight], layer.unit_dim) == 0).all(dim=1)
    if layer.bias is not None:
        zero &= (state[layer.bias] == 0).to(zero.device)
    return ~zero


def _check_proxies(proxies: Sequence[ShippedProxy], owner: str) -> tuple[list[tuple[int, list[ShippedProxy]]], str]:
    """Proxies grouped by round, latest round first, each group sorted by client id."""
    if isinstance(proxies, ShippedProxy) or not isinstance(proxies, Iterable):
        raise invalid("proxies", owner, "a non-empty sequence of ShippedProxy", type(proxies).__name__)
    proxies = list(proxies)
    if not proxies or not all(isinstance(p, ShippedProxy) for p in proxies):
        raise invalid("proxies", owner, "a non-empty sequence of ShippedProxy",
                      [type(p).__name__ for p in proxies][:3])
    modes = sorted({p.mask_mode for p in proxies})
    if len(modes) != 1 or modes[0] not in MODES:
        raise invalid("proxies", owner, "proxies of one mask_mode among {'activation', 'weights'}",
                      f"mask modes {modes}")
    rounds: dict[int, list[ShippedProxy]] = {}
    for p in proxies:
        rounds.setdefault(int(p.round), []).append(p)
    return [(r, sorted(rounds[r], key=lambda p: p.client_id)) for r in sorted(rounds, reverse=True)], modes[0]


def _aliases(state: Mapping[str, torch.Tensor], weights: Iterable[str], skip: set[str]) -> dict[str, str]:
    """State entries (outside ``skip``) tied to one of ``weights``: same storage or same values."""
    out = {}
    targets = [w for w in weights if w in state]
    for name, t in state.items():
        if name in skip or not isinstance(t, torch.Tensor):
            continue
        for w in targets:
            other = state[w]
            if t.shape == other.shape and t.dtype == other.dtype and (
                    t.data_ptr() == other.data_ptr() or torch.equal(t, other.to(t.device))):
                out[name] = w
                break
    return out


def _extract(proxies: Sequence[ShippedProxy], owner: str):
    by_round, mode = _check_proxies(proxies, owner)
    latest_round, latest_group = by_round[0]
    latest = latest_group[0]
    estimate = {k: v.detach().clone() for k, v in latest.state.items()}
    seen: dict[str, torch.Tensor] = {}
    source: dict[str, torch.Tensor] = {}
    if mode == "activation":
        for layer in latest.masked:
            n = latest.state[layer.weight].shape[layer.unit_dim % latest.state[layer.weight].dim()]
            seen[layer.weight] = torch.ones(n, dtype=torch.bool)
            source[layer.weight] = torch.full((n,), latest_round, dtype=torch.long)
        return estimate, seen, source

    for layer in latest.masked:
        w_ref = latest.state[layer.weight]
        d = layer.unit_dim % w_ref.dim()
        n = w_ref.shape[d]
        b_ref = latest.state[layer.bias] if layer.bias is not None else None
        est_w = torch.zeros(w_ref.shape, dtype=torch.float64, device=w_ref.device)
        est_b = None if b_ref is None else torch.zeros(b_ref.shape, dtype=torch.float64, device=b_ref.device)
        filled = torch.zeros(n, dtype=torch.bool)
        from_round = torch.full((n,), -1, dtype=torch.long)
        for r, group in by_round:
            sum_w = torch.zeros_like(est_w)
            sum_b = None if est_b is None else torch.zeros_like(est_b)
            count = torch.zeros(n, dtype=torch.long)
            for p in group:
                ml = next((m for m in p.masked if m.weight == layer.weight), None)
                if ml is None:
                    continue
                keep = ml.keep.to("cpu", torch.bool) if ml.keep is not None else infer_keep(p.state, ml).cpu()
                take = keep & ~filled
                if not bool(take.any()):
                    continue
                w = p.state[ml.weight].to(est_w.device, torch.float64) / ml.scale
                sum_w += torch.where(_unit_view(take, w, d), w, torch.zeros((), dtype=w.dtype, device=w.device))
                if sum_b is not None:
                    b = p.state[ml.bias].to(est_b.device, torch.float64) / ml.scale
                    sum_b += torch.where(take.to(b.device), b, torch.zeros((), dtype=b.dtype, device=b.device))
                count += take.long()
            new = count > 0
            if not bool(new.any()):
                continue
            denom = count.clamp(min=1).to(torch.float64)
            est_w = torch.where(_unit_view(new, est_w, d), sum_w / _unit_view(denom, est_w, d), est_w)
            if est_b is not None:
                est_b = torch.where(new.to(est_b.device), sum_b / denom.to(est_b.device), est_b)
            filled |= new
            from_round[new] = r
        estimate[layer.weight] = est_w.to(w_ref.dtype)
        if est_b is not None:
            estimate[layer.bias] = est_b.to(b_ref.dtype)
        seen[layer.weight] = filled
        source[layer.weight] = from_round

    own = {m.weight for m in latest.masked} | {m.bias for m in latest.masked if m.bias is not None}
    for alias, target in _aliases(latest.state, [m.weight for m in latest.masked], own).items():
        estimate[alias] = estimate[target].clone()
    return estimate, seen, source


def effective_state(proxy: ShippedProxy) -> dict[str, torch.Tensor]:
    """The weights ``proxy`` computes with, as its client uses it without attacking: in
    ``"activation"`` mode the shipped mask folded into the weights (masked units' slices and
    bias entries zero, kept ones times ``scale``; equivalent to the activation mask, except
    that a tied entry present in the state, e.g. GPT-2's head, follows its weight while the
    official hook leaves the head alone); in ``"weights"`` mode the state as shipped."""
    if not isinstance(proxy, ShippedProxy):
        raise invalid("proxy", "effective_state", "a ShippedProxy", type(proxy).__name__)
    state = {k: v.detach().clone() for k, v in proxy.state.items()}
    if proxy.mask_mode != "activation":
        return state
    own = {m.weight for m in proxy.masked} | {m.bias for m in proxy.masked if m.bias is not None}
    aliases = _aliases(proxy.state, [m.weight for m in proxy.masked], own)
    for m in proxy.masked:
        if m.keep is None:
            raise invalid("proxy", "effective_state", "an activation-mode proxy with its masks", m.weight)
        w, b = apply_unit_mask(state[m.weight], state[m.bias] if m.bias is not None else None,
                               m.keep.to(torch.bool), m.scale, m.unit_dim)
        state[m.weight] = w
        if m.bias is not None:
            state[m.bias] = b
    for alias, target in aliases.items():
        state[alias] = state[target].clone()
    return state


# -- the attack ----------------------------------------------------------------------------------


def estimate_global(proxies: Sequence[ShippedProxy]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Estimate the global model from the ``proxies`` a coalition collected over rounds.

    Returns ``(estimate, seen)``: ``estimate`` has every entry of the latest proxy's state
    (the estimate of the latest round's global model); ``seen[name]`` is a bool tensor over
    the hidden units of each masked layer (keyed by its weight name), True where some proxy
    showed the unit kept (all True in ``"activation"`` mode, where the whole weights are
    shipped). See the module docstring for the rules.
    """
    estimate, seen, _ = _extract(proxies, "estimate_global")
    return estimate, seen


def unit_rounds(proxies: Sequence[ShippedProxy]) -> dict[str, torch.Tensor]:
    """For each masked layer (keyed by weight name), the round each unit's estimate comes
    from (long tensor; -1: never seen, filled with zeros). Units from a round before the
    latest hold stale values."""
    return _extract(proxies, "unit_rounds")[2]


def fine_tune(model: nn.Module, estimate: Mapping[str, torch.Tensor], data: ClientData, *,
              steps: int, lr: float) -> dict[str, torch.Tensor]:
    """Load ``estimate`` into a copy of ``model`` (which is left unchanged) and run ``steps``
    full-batch SGD steps at ``lr`` on the coalition's ``data``; returns the new state dict
    (``state_dict()`` of the copy: a tied weight appears under each of its names).
    ``estimate`` must give every parameter (a tied one under any of its names) and buffers
    it wants to set; entries the model does not have are an error."""
    owner = "fine_tune"
    if not isinstance(model, nn.Module):
        raise invalid("model", owner, "a torch.nn.Module", type(model).__name__)
    if not isinstance(data, ClientData):
        raise invalid("data", owner, "a ClientData", type(data).__name__)
    steps = check_interval("steps", owner, steps, kind=int, low=1)
    lr = check_positive("lr", owner, lr)
    local = copy.deepcopy(model)
    # a state from named_parameters() lists a tied weight once (GPT-2's head is wte):
    # every parameter must be given, under one of its names; nothing unknown
    missing_params = [n for n in dict(local.named_parameters()) if n not in estimate]
    _, unexpected = local.load_state_dict(dict(estimate), strict=False)
    if missing_params or unexpected:
        raise invalid("estimate", owner, "an entry for every parameter of model and nothing else",
                      f"missing {missing_params[:3]}, unknown {list(unexpected)[:3]}")
    device = next(local.parameters()).device
    update = local_update(local, data.to(device), LocalTraining(steps=steps, lr=lr, kind=UpdateKind.MODEL_DELTA),
                          client_id=-1, round=-1)
    with torch.no_grad():
        for name, p in local.named_parameters():
            if name in update.tensors:
                p.sub_(update.tensors[name].to(p.device))
    return {k: v.detach().clone() for k, v in local.state_dict().items()}


# -- metrics -------------------------------------------------------------------------------------


def _layers(masked_layers, owner: str) -> list[_Layer]:
    """MaskedLayer objects, LayerSpec objects, or fedqsn_layers' mapping (masked ones only)."""
    items = masked_layers.values() if isinstance(masked_layers, Mapping) else masked_layers
    out = []
    for item in items:
        if isinstance(item, MaskedLayer):
            out.append(_Layer(item.weight, item.bias, item.unit_dim))
        elif hasattr(item, "masked") and hasattr(item, "name"):  # defenses.unit_masks.LayerSpec
            if item.masked:
                out.append(_Layer(item.name, item.bias, item.unit_dim))
        else:
            raise invalid("masked_layers", owner, "MaskedLayer or LayerSpec objects (or fedqsn_layers' mapping)",
                          type(item).__name__)
    return out


def _scores(est: list[torch.Tensor], true: list[torch.Tensor]) -> tuple[float, float]:
    """Relative L2 error and cosine of the concatenated vectors (float64); cosine 0 when
    either is all zero, relative error inf when the truth is all zero and the estimate not."""
    if not true:
        return float("nan"), float("nan")
    e = torch.cat([t.reshape(-1).double().cpu() for t in est])
    g = torch.cat([t.reshape(-1).double().cpu() for t in true])
    ng, ne = float(g.norm()), float(e.norm())
    diff = float((e - g).norm())
    rel = diff / ng if ng > 0 else (0.0 if diff == 0 else math.inf)
    cos = float(e @ g) / (ne * ng) if ne > 0 and ng > 0 else 0.0
    return rel, cos


def extraction_metrics(estimate: Mapping[str, torch.Tensor], global_state: Mapping[str, torch.Tensor],
                       masked_layers, server_keep: Mapping[str, torch.Tensor] | None = None, *,
                       seen: Mapping[str, torch.Tensor] | None = None) -> dict[str, float]:
    """How close ``estimate`` is to the true ``global_state``.

    ``masked_layers``: the masked layers (``MaskedLayer`` objects of a proxy, ``LayerSpec``
    objects, or :func:`defenses.unit_masks.fedqsn_layers`' mapping, whose unmasked entries are
    skipped). Every floating-point entry of ``global_state`` is scored once (a parameter tied
    to a masked weight, e.g. GPT-2's LM head, is skipped). Returns:

    * ``rel_error``, ``cosine``: over all parameters;
    * with ``server_keep`` (weight name -> bool keep mask of the server): ``rel_error_unmasked``,
      ``cosine_unmasked`` over every parameter except the server-masked units' weight slices
      and bias entries, and ``server_kept_fraction``;
    * with ``seen`` (from :func:`estimate_global`): ``seen_fraction`` over all units of the
      masked layers, and with ``server_keep`` also ``seen_fraction_server_kept`` and
      ``seen_fraction_server_masked`` (units the server masked that the adversary still saw:
      only possible in ``"activation"`` mode).
    """
    owner = "extraction_metrics"
    layers = _layers(masked_layers, owner)
    by_weight = {layer.weight: layer for layer in layers}
    bias_of = {layer.bias: layer for layer in layers if layer.bias is not None}
    own = set(by_weight) | set(bias_of)
    aliases = _aliases(global_state, by_weight, own)
    names = [n for n, t in global_state.items()
             if isinstance(t, torch.Tensor) and t.is_floating_point() and n not in aliases]
    missing = [n for n in names if n not in estimate]
    if missing:
        raise invalid("estimate", owner, "an entry for every parameter of global_state", f"missing {missing[:3]}")
    if server_keep is not None:
        unknown = set(server_keep) - set(by_weight)
        if unknown:
            raise invalid("server_keep", owner, "keyed by the masked layers' weight names", sorted(unknown)[:3])

    est_all, true_all, est_kept, true_kept = [], [], [], []
    for n in names:
        e, g = estimate[n], global_state[n]
        if e.shape != g.shape:
            raise invalid("estimate", owner, f"{n!r} shaped {tuple(g.shape)}", tuple(e.shape))
        est_all.append(e)
        true_all.append(g)
        layer = by_weight.get(n) or bias_of.get(n)
        keep = None if layer is None or server_keep is None else server_keep.get(layer.weight)
        if keep is None:
            est_kept.append(e)
            true_kept.append(g)
        elif n == layer.weight:
            rows = keep.to(torch.bool).cpu()
            est_kept.append(_units_first(e.cpu(), layer.unit_dim)[rows])
            true_kept.append(_units_first(g.cpu(), layer.unit_dim)[rows])
        else:
            rows = keep.to(torch.bool).cpu()
            est_kept.append(e.cpu()[rows])
            true_kept.append(g.cpu()[rows])
    out: dict[str, float] = {}
    out["rel_error"], out["cosine"] = _scores(est_all, true_all)
    if server_keep is not None:
        out["rel_error_unmasked"], out["cosine_unmasked"] = _scores(est_kept, true_kept)
        total = sum(int(k.numel()) for k in server_keep.values())
        out["server_kept_fraction"] = sum(int(k.sum()) for k in server_keep.values()) / total if total else float("nan")
    if seen is not None:
        total = sum(int(s.numel()) for s in seen.values())
        out["seen_fraction"] = sum(int(s.sum()) for s in seen.values()) / total if total else float("nan")
        if server_keep is not None:
            kept = masked = seen_kept = seen_masked = 0
            for name, keep in server_keep.items():
                k = keep.to(torch.bool).cpu()
                s = seen[name].to(torch.bool).cpu() if name in seen else torch.zeros_like(k)
                kept += int(k.sum())
                masked += int((~k).sum())
                seen_kept += int((s & k).sum())
                seen_masked += int((s & ~k).sum())
            out["seen_fraction_server_kept"] = seen_kept / kept if kept else float("nan")
            out["seen_fraction_server_masked"] = seen_masked / masked if masked else float("nan")
    return out


class ProxyExtraction(Attack):
    """Registered attack ``proxy-extraction``: :func:`estimate_global` over the proxies of a
    coalition of ``coalition`` clients in the last ``rounds_observed`` rounds (None: all),
    then ``fine_tune_steps`` full-batch SGD steps at ``fine_tune_lr`` on the coalition's data
    (0: none). The harness (:mod:`audit.extraction.extraction_audit`) picks the proxies the view holds."""

    name = "proxy-extraction"
    family = "model-extraction"
    default_threat_model = "proxy-client"

    def __init__(self, *, coalition: int = 1, rounds_observed: int | None = None,
                 fine_tune_steps: int = 0, fine_tune_lr: float = 0.1) -> None:
        self.coalition = check_interval("coalition", self.name, coalition, kind=int, low=1)
        self.rounds_observed = None if rounds_observed is None else check_interval(
            "rounds_observed", self.name, rounds_observed, kind=int, low=1)
        self.fine_tune_steps = check_interval("fine_tune_steps", self.name, fine_tune_steps, kind=int, low=0)
        self.fine_tune_lr = check_positive("fine_tune_lr", self.name, fine_tune_lr)

    def params(self) -> dict:
        return {"coalition": self.coalition, "rounds_observed": self.rounds_observed,
                "fine_tune_steps": self.fine_tune_steps, "fine_tune_lr": self.fine_tune_lr}

    def run(self, view, *, generator: torch.Generator, device: torch.device, progress: bool = False):
        if not view.proxies:
            raise invalid("proxies", self.name, "at least one proxy received by the coalition", "none")
        estimate, seen = estimate_global(view.proxies)
        if self.fine_tune_steps:
            data = ClientData(view.data.inputs.to(device), view.data.labels.to(device))
            estimate = fine_tune(view.model.to(device), estimate, data, steps=self.fine_tune_steps,
                                 lr=self.fine_tune_lr)
        frac = [float(s.float().mean()) for s in seen.values()]
        return AttackResult(model_state=estimate,
                            stats={"seen_fraction": sum(frac) / len(frac) if frac else 1.0})
