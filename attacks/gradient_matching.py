"""Shared machinery of optimisation-based gradient inversion (DLG, iDLG, Inverting Gradients).

The adversary re-simulates the client's update for candidate data with the broadcast model
(functionally, with ``torch.func``) and compares it with the observed update. Everything
here is differentiable in the candidate data and ``vmap``-able over candidates, so several
restarts run as one batched optimisation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call, grad, replace_all_batch_norm_modules_

from audit.core.updates import LocalTraining, UpdateKind

Params = dict[str, torch.Tensor]
UpdateFn = Callable[[Params, torch.Tensor, torch.Tensor], Params]


def attack_copy(model: nn.Module, device: torch.device,
                observed: Mapping[str, torch.Tensor] | None = None) -> tuple[nn.Module, Params]:
    """A train-mode copy of ``model`` on ``device`` whose batch norms keep no running stats
    (the client trains in train mode; running stats do not change its update), and its
    detached parameters: those in ``observed`` when given (a client that trains part of the
    model, e.g. LoRA factors, sends only that part; the rest stays fixed at the broadcast
    weights in the re-simulation)."""
    m = copy.deepcopy(model).to(device).train()
    replace_all_batch_norm_modules_(m)
    params = {n: p.detach() for n, p in m.named_parameters()
              if observed is None or n in observed}
    if not params:
        raise ValueError("the observed update names none of the model's parameters")
    return m, params


def _loss(model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor,
          weight: torch.Tensor | None = None) -> torch.Tensor:
    logits = functional_call(model, params, (x,))
    if y.dtype.is_floating_point:  # soft labels (DLG's joint label optimisation)
        return -(y * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
    return nn.functional.cross_entropy(logits, y, weight=weight)


def make_update_fn(model: nn.Module, training: LocalTraining) -> UpdateFn:
    """``f(params, x, y)`` -> the update a client with data (x, y) would compute.

    Gradient: dL/dtheta. Model delta: theta_0 - theta_E after ``training.steps`` full-batch
    SGD steps at ``training.lr`` (unrolled, so it stays differentiable in x).
    """
    weight = training.loss_weight(next(iter(model.parameters())).device)
    g = grad(lambda p, x, y: _loss(model, p, x, y, weight))
    if training.kind is UpdateKind.GRADIENT:
        return g

    def delta(params: Params, x: torch.Tensor, y: torch.Tensor) -> Params:
        p, v = params, None
        for _ in range(training.steps):
            step = g(p, x, y)
            if training.momentum:  # heavy ball, buffer starting at the first gradient
                v = step if v is None else {n: training.momentum * v[n] + step[n] for n in step}
                step = v
            p = {n: p[n] - training.lr * step[n] for n in p}
        return {n: params[n] - p[n] for n in params}

    return delta


def cosine_distance(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """1 - <a, b> / (|a| |b|) over all tensors together (Geiping et al. 2020, eq. 4)."""
    dot = sum((a[n] * b[n]).sum() for n in b)
    na = torch.sqrt(sum((a[n] ** 2).sum() for n in b))
    nb = torch.sqrt(sum((b[n] ** 2).sum() for n in b))
    return 1.0 - dot / (na * nb + 1e-20)


def l2_distance(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Sum of squared differences over all tensors (Zhu et al. 2019)."""
    return sum(((a[n] - b[n]) ** 2).sum() for n in b)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute difference of neighbouring pixels."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return dx + dy


def observed_tensors(target: Mapping[str, torch.Tensor], params: Params, device) -> Params:
    """The observed update restricted to the model's parameters, on ``device``."""
    return {n: target[n].detach().to(device) for n in params}
