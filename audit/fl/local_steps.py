"""One description of a client's local training, run by the simulation and re-run by attacks.

:class:`~audit.core.updates.LocalTraining` says what a client does; this module turns it
into the pieces both sides need, so the federated simulation (:func:`audit.fl.simulation.local_update`,
imperative, no graph) and an attack's re-simulation
(:func:`attacks.gradient_matching.make_update_fn`, functional, differentiable in the
candidate data) compute the same function:

* :func:`minibatch_schedule`: the index sets of the local steps, in order;
* :func:`loss_function`: cross-entropy (with the task's class weights) or the user's loss;
* :func:`training_mode`: the module mode of the local step (BatchNorm batch or running
  statistics, dropout on or off);
* :func:`optimizer_step`: one SGD or Adam step on a mapping of tensors, written out as
  ``torch.optim.SGD`` / ``torch.optim.Adam`` compute it (the tests compare with both).

Choices of this project:

* The minibatch order is drawn from a generator seeded by the client id and the round
  (``shuffle``; otherwise data order), and is treated as part of the public protocol: the
  adversary re-simulates with the same order (the adversary's best case, as in Geiping et
  al. 2020's multi-step inversions). Minibatches are consecutive slices of that order, the
  last one smaller when the data does not divide (``drop_last=False``, DataLoader's default).
* Optimizer state starts fresh each round (a client builds its optimizer per round).
* Adam's ``sqrt(v)`` is taken of ``max(v, 1e-36)``: the same float32 value as
  ``torch.optim.Adam`` wherever it matters, and a finite derivative where ``v`` is 0 (a
  parameter whose gradient has been exactly 0), which the differentiable re-simulation needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from audit.core.updates import CROSS_ENTROPY, LocalTraining
from audit.core.user_code import load_callable

Tensors = dict[str, torch.Tensor]
_V_FLOOR = 1e-36
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def order_seed(client_id: int, round: int) -> int:
    """The seed of a client's minibatch order in a round (public, see the module docstring)."""
    return 1_000_003 * (int(client_id) + 2) + int(round)


def minibatch_schedule(num_examples: int, training: LocalTraining, *, client_id: int,
                       round: int) -> list[torch.Tensor] | None:
    """The index tensors of the local steps in order, or None for full-batch steps
    (``training.steps`` of them over all local data)."""
    if training.batch_size is None:
        return None
    # NumPy, not torch's generator: the schedule is also drawn inside torch.func.vmap (an
    # attack's batched restarts), where torch's random operations are refused
    rng = np.random.default_rng(order_seed(client_id, round))
    steps: list[torch.Tensor] = []
    for _ in range(training.epochs):
        order = rng.permutation(num_examples) if training.shuffle else np.arange(num_examples)
        steps += list(torch.from_numpy(order.astype(np.int64)).split(training.batch_size))
    return steps


def loss_function(training: LocalTraining, device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(logits, labels)``: cross-entropy with the task's class weights, or the user's
    function named by ``training.loss`` (which must return a scalar tensor)."""
    if training.loss == CROSS_ENTROPY:
        weight = training.loss_weight(device)
        return lambda logits, labels: nn.functional.cross_entropy(logits, labels, weight=weight)
    if training.class_weights is not None:
        raise ValueError("class weights apply to the cross-entropy loss only")
    return load_callable(training.loss, parameter="loss", owner="the local training")


def check_loss(training: LocalTraining) -> None:
    """Load the user's loss now (before any work), so a bad ``module:function`` fails early."""
    if training.loss != CROSS_ENTROPY:
        load_callable(training.loss, parameter="loss", owner="the local training")


def _set_mode(model: nn.Module, training: LocalTraining) -> None:
    model.train(training.model_mode == "train")
    if training.dropout is not None:
        for m in model.modules():
            if isinstance(m, _DROPOUT):
                m.train(training.dropout)


@contextlib.contextmanager
def training_mode(model: nn.Module, training: LocalTraining) -> Iterator[nn.Module]:
    """Within: ``model`` in the local step's mode; every module's previous mode restored after."""
    saved = [(m, m.training) for m in model.modules()]
    try:
        _set_mode(model, training)
        yield model
    finally:
        for m, was in saved:
            m.training = was


def set_training_mode(model: nn.Module, training: LocalTraining) -> nn.Module:
    """Put ``model`` (a private copy) in the local step's mode, for good."""
    _set_mode(model, training)
    return model


def optimizer_step(params: Mapping[str, torch.Tensor], grads: Mapping[str, torch.Tensor],
                   state: dict, training: LocalTraining) -> Tensors:
    """New parameters after one step; ``state`` (empty at the first step of a round) is
    updated in place. Out-of-place throughout, so it is differentiable when the inputs are."""
    lr, wd = training.lr, training.weight_decay
    state["step"] = state.get("step", 0) + 1
    out: Tensors = {}
    if training.optimizer == "sgd":
        bufs = state.setdefault("momentum", {})
        for n, p in params.items():
            g = grads[n] if not wd else grads[n].add(p, alpha=wd)
            if training.momentum:
                g = g if n not in bufs else bufs[n].mul(training.momentum).add(g)
                bufs[n] = g
            out[n] = p.add(g, alpha=-lr)
        return out
    beta1, beta2 = training.betas
    step = state["step"]
    m_all, v_all = state.setdefault("exp_avg", {}), state.setdefault("exp_avg_sq", {})
    bias1, bias2_sqrt = 1 - beta1 ** step, (1 - beta2 ** step) ** 0.5
    for n, p in params.items():
        g = grads[n] if not wd else grads[n].add(p, alpha=wd)
        m = m_all.get(n, torch.zeros_like(p)).lerp(g, 1 - beta1)
        v = v_all.get(n, torch.zeros_like(p)).mul(beta2).addcmul(g, g, value=1 - beta2)
        m_all[n], v_all[n] = m, v
        denom = (v.clamp_min(_V_FLOOR).sqrt() / bias2_sqrt).add(training.eps)
        out[n] = p.addcdiv(m, denom, value=-lr / bias1)
    return out
