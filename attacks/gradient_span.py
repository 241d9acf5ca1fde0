"""The span of a linear layer's weight gradient, and membership of candidate inputs in it
(the fact DAGER rests on; Petrov, Dimitrov, Baader, Müller, Vechev 2024, NeurIPS): for
``y = x W`` over the rows of ``X``, ``dL/dW = X^T Delta``, so the gradient's row space is the
span of the layer's inputs while they are fewer than its width. The thresholds and the
LayerNorm and LoRA cases are :mod:`attacks.dager`'s choices, described there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Span:
    """The row space of one gradient matrix of linear ``module``: ``basis`` (r, k) orthonormal
    rows (float64); the module's inputs ``x`` (n, d_in) are tested as ``x @ project.T`` (a LoRA
    ``A``) or as is. ``space`` is the dimension the tested vectors can fill (a LayerNorm output
    without bias lies in a hyperplane); ``usable``: ``rank`` below ``space`` and below the
    matrix's other dimension (module notes)."""

    module: str
    name: str
    basis: torch.Tensor
    rank: int
    space: int
    usable: bool
    project: torch.Tensor | None = None

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """Relative distance of each row of ``x`` to the span, (n,)."""
        x = x.detach().double()
        if self.project is not None:
            x = x @ self.project.T
        residual = x - (x @ self.basis.T) @ self.basis
        return residual.norm(dim=-1) / x.norm(dim=-1).clamp_min(1e-300)


def input_space(norm: nn.Module | None, width: int, device: torch.device) -> torch.Tensor:
    """An orthonormal basis (width, k) of the space a LayerNorm's outputs span: ``gamma *
    (u - mean u) / std u + beta`` lies in the hyperplane ``<x, 1/gamma> = <beta, 1/gamma>``,
    a linear one (k = width - 1) when that constant is 0 (e.g. ``beta = 0`` at init); else all
    of ``R^width`` (also for no ``norm``)."""
    eye = torch.eye(width, dtype=torch.float64, device=device)
    weight, bias = getattr(norm, "weight", None), getattr(norm, "bias", None)
    if not isinstance(norm, nn.LayerNorm) or weight is None or bias is None or bool((weight == 0).any()):
        return eye
    inv = 1.0 / weight.detach().double()
    b = bias.detach().double()
    if float((inv @ b).abs()) > 1e-6 * float(inv.norm() * b.norm()):
        return eye
    n = inv / inv.norm()
    q, _ = torch.linalg.qr(eye - torch.outer(n, n))
    return q[:, : width - 1]


def row_span(module: str, name: str, matrix: torch.Tensor, rank_tol: float, space: torch.Tensor,
             project: torch.Tensor | None = None) -> Span:
    """The :class:`Span` of ``matrix``'s rows (numerical rank ``s_i > rank_tol * s_max``), its
    tested vectors confined to ``space`` (a basis of the inputs' space, before ``project``)."""
    m = matrix.detach().double()
    _, s, vh = torch.linalg.svd(m, full_matrices=False)
    rank = int((s > rank_tol * s[0]).sum()) if len(s) and float(s[0]) > 0 else 0
    p = None if project is None else project.detach().double()
    basis = space if p is None else p @ space
    dim = int(torch.linalg.matrix_rank(basis))
    usable = 0 < rank < min(dim, m.shape[0])
    return Span(module, name, vh[:rank], rank, dim, usable, p)


def norm_before(model: nn.Module, module: str) -> nn.Module | None:
    """The LayerNorm GPT-2 applies before ``module`` (``ln_1`` for attention, ``ln_2`` for the MLP)."""
    block, _, rest = module.rpartition(".attn.") if ".attn." in module else module.rpartition(".mlp.")
    ln = "ln_1" if ".attn." in module else "ln_2"
    return dict(model.named_modules()).get(f"{block}.{ln}") if rest else None


def layer_spans(model: nn.Module, module: str, update: Mapping[str, torch.Tensor], rank_tol: float) -> list[Span]:
    """The spans the update gives for the inputs of linear ``module`` (a GPT-2 ``Conv1D``,
    possibly wrapped by peft's LoRA): its full weight gradient and its LoRA factors'."""
    params = dict(model.named_parameters())
    spans = []
    width = None
    full = update.get(f"{module}.weight")
    if full is None:
        full = update.get(f"{module}.base_layer.weight")
    a_names = sorted(n for n in params if n.startswith(f"{module}.lora_A.") and n.endswith(".weight"))
    if full is not None and full.ndim == 2:
        width = full.shape[0]
    elif a_names:
        width = params[a_names[0]].shape[1]
    if width is None:
        return spans
    device = next(iter(params.values())).device
    space = input_space(norm_before(model, module), width, device)
    if full is not None and full.ndim == 2:
        spans.append(row_span(module, f"{module}.weight", full.T, rank_tol, space))  # Conv1D: (d_in, d_out)
    for a_name in a_names:
        b_name = a_name.replace(".lora_A.", ".lora_B.")
        ga, gb = update.get(a_name), update.get(b_name)
        if gb is not None:
            spans.append(row_span(module, b_name, gb, rank_tol, space, project=params[a_name]))
        if ga is not None:
            spans.append(row_span(module, a_name, ga, rank_tol, space))
    return spans


def span_distance(spans: Sequence[Span], x: torch.Tensor) -> torch.Tensor:
    """The smallest distance over the usable spans (module notes: a span whose smallest true
    direction fell under the rank threshold misses members, a spurious direction admits none)."""
    return torch.stack([s.distance(x) for s in spans if s.usable]).amin(dim=0)
