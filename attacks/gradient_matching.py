"""Shared machinery of optimisation-based gradient inversion (DLG, iDLG, Inverting Gradients).

The adversary re-simulates the client's update for candidate data with the broadcast model
(functionally, with ``torch.func``) and compares it with the observed update. Everything
here is differentiable in the candidate data and ``vmap``-able over candidates, so several
restarts run as one batched optimisation.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call, grad, replace_all_batch_norm_modules_
from tqdm.auto import tqdm

from audit.core.updates import MODEL_MODES, LocalTraining, UpdateKind
from audit.core.validation import check_options
from audit.fl.local_steps import loss_function, minibatch_schedule, optimizer_step

Params = dict[str, torch.Tensor]
UpdateFn = Callable[[Params, torch.Tensor, torch.Tensor], Params]


def attack_copy(model: nn.Module, device: torch.device,
                observed: Mapping[str, torch.Tensor] | None = None,
                training: LocalTraining | None = None) -> tuple[nn.Module, Params]:
    """A copy of ``model`` on ``device`` in the client's module mode, and its detached
    parameters: those in ``observed`` when given (a client that trains part of the model,
    e.g. LoRA factors, sends only that part; the rest stays fixed at the broadcast weights
    in the re-simulation).

    Train mode (the default): batch norms normalise by the candidate batch's statistics
    and keep no running stats (running stats do not change the client's update); eval
    mode: they use the broadcast model's running statistics. Dropout is off either way:
    the adversary cannot know the client's dropout masks."""
    m = copy.deepcopy(model).to(device)
    if training is None or training.model_mode == "train":
        m.train()
        replace_all_batch_norm_modules_(m)
    else:
        m.eval()
    for sub in m.modules():
        if isinstance(sub, nn.modules.dropout._DropoutNd):
            sub.eval()
    params = {n: p.detach() for n, p in m.named_parameters()
              if observed is None or n in observed}
    if not params:
        raise ValueError("the observed update names none of the model's parameters")
    return m, params


def check_assumed_mode(mode: str | None, owner: str) -> str | None:
    """An attack's ``assumed_model_mode`` parameter: None (the true mode) or a module mode."""
    return None if mode is None else check_options("assumed_model_mode", owner, mode, MODEL_MODES)


def assumed_training(training: LocalTraining, mode: str | None) -> LocalTraining:
    """The clients' local training as the adversary assumes it: the true one, or with the
    module mode replaced by ``mode``."""
    return training if mode is None else replace(training, model_mode=mode)


def _loss(model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor,
          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    logits = functional_call(model, params, (x,))
    if y.dtype.is_floating_point:  # soft labels (DLG's joint label optimisation)
        return -(y * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
    return loss_fn(logits, y)


def make_update_fn(model: nn.Module, training: LocalTraining, *, client_id: int = -1,
                   round: int = 0) -> UpdateFn:
    """``f(params, x, y)`` -> the update a client with data (x, y) would compute.

    Gradient: dL/dtheta. Model delta: theta_0 - theta_E after the client's local steps
    (:mod:`audit.fl.local_steps`: full-batch steps or minibatches in the order of
    ``client_id`` and ``round``, SGD or Adam, the user's loss), unrolled, so it stays
    differentiable in x. The model's mode is :func:`attack_copy`'s.
    """
    loss_fn = loss_function(training, next(iter(model.parameters())).device)
    g = grad(lambda p, x, y: _loss(model, p, x, y, loss_fn))
    if training.kind is UpdateKind.GRADIENT:
        return g

    def delta(params: Params, x: torch.Tensor, y: torch.Tensor) -> Params:
        schedule = minibatch_schedule(x.shape[0], training, client_id=client_id, round=round)
        p, state = params, {}
        for idx in [None] * training.steps if schedule is None else schedule:
            step = g(p, x, y) if idx is None else g(p, x[idx.to(x.device)], y[idx.to(y.device)])
            p = optimizer_step(p, step, state, training)
        return {n: params[n] - p[n] for n in params}

    return delta


def make_epoch_update_fn(model: nn.Module, training: LocalTraining,
                         orders: list[torch.Tensor]) -> Callable[[Params, torch.Tensor, torch.Tensor], Params]:
    """``f(params, xs, y)`` -> the model delta of the client's minibatch epochs when the
    adversary does not know the minibatch order (Dimitrov et al. 2022): ``xs`` holds one
    candidate set per epoch (V, N, ...), V = epochs or 1 (the same set every epoch),
    ``y`` the N labels, and epoch e's minibatches are consecutive slices of ``orders[e]``
    (the adversary's own arrangement of the N slots). Optimizer state carries across epochs,
    as in the client's round."""
    if training.kind is UpdateKind.GRADIENT or training.batch_size is None:
        raise ValueError("epoch variables need a model delta of minibatch epochs")
    loss_fn = loss_function(training, next(iter(model.parameters())).device)
    g = grad(lambda p, x, y: _loss(model, p, x, y, loss_fn))
    batches = [list(order.split(training.batch_size)) for order in orders]

    def delta(params: Params, xs: torch.Tensor, y: torch.Tensor) -> Params:
        p, state = params, {}
        for e, epoch in enumerate(batches):
            x = xs[e if xs.shape[0] > 1 else 0]
            for idx in epoch:
                p = optimizer_step(p, g(p, x[idx.to(x.device)], y[idx.to(y.device)]), state, training)
        return {n: params[n] - p[n] for n in params}

    return delta


def signed_adam_descent(step_grad: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                        iterations: int, lr: float, desc: str, progress: bool) -> tuple[torch.Tensor, float]:
    """Geiping et al. 2020's optimiser: Adam on the sign of ``step_grad(x)``, the learning rate
    divided by 10 at 3/8, 5/8 and 7/8 of the iterations, x boxed to [0, 1] after each step.
    Returns the final x (detached) and the CPU seconds per iteration after the first
    (which pays any one-off cost; nan for a single iteration)."""
    x = x.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    milestones = [int(iterations * f) for f in (3 / 8, 5 / 8, 7 / 8)]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    after_first = None
    for i in tqdm(range(iterations), desc=desc, disable=not progress, leave=False):
        opt.zero_grad(set_to_none=True)
        x.grad = step_grad(x.detach()).sign()
        opt.step()
        sched.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        if i == 0:
            after_first = time.process_time()
    step_cpu_s = (time.process_time() - after_first) / (iterations - 1) if iterations > 1 else float("nan")
    return x.detach(), step_cpu_s


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
