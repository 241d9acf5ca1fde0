"""Label counts from a FedAvg model delta, estimated at every local step (Dimitrov,
Balunović, Konstantinov, Vechev 2022, "Data leakage in federated averaging", TMLR, sec. 4.3).

The FedSGD count estimate (:func:`attacks.label_recovery.count_labels`: the mean bias
gradient is ``p_bar - n / B``) assumes one set of weights; a client that runs T local
steps computes its gradients at T unobserved intermediate weights, where the model's mean
prediction ``p_bar_t`` drifts. Dimitrov et al. estimate the FedSGD statistic at every step
from weights interpolated between the broadcast ``theta_0`` and the client's result
``theta_T = theta_0 - delta``: ``theta_t = theta_0 - (t / T) delta``.

With plain SGD the last layer's bias moves by ``delta_b = lr * sum_t (p_bar_t - n_t / B_t)``;
each example is used once per epoch, so ``n_t / B_t`` is ``n / N`` on average over the steps
(N local examples), and ``n = N (sum_t p_bar_t - delta_b / lr) / T``.

Choices of this project, where the paper is silent or narrower:

* heavy-ball momentum weighs step t's gradient by ``(1 - mu^(T - t)) / (1 - mu)`` (its share of
  the sum of velocities) and coupled weight decay adds ``wd * b_t`` (the interpolated bias)
  to each step's bias gradient: both in the same linear solve;
* Adam's update is not linear in the gradients, so with Adam the FedSGD estimate is used
  (:func:`attacks.label_recovery.recover_labels`), and the method says so;
* ``p_bar_t`` is the model's mean softmax on ``samples`` uniform random inputs in the
  clients' module mode (BatchNorm in train mode normalises by the dummy batch's
  statistics); class weights of the loss are ignored (the estimate is then approximate);
* counts are rounded by largest remainder so that they sum to N.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from attacks.gradient_matching import attack_copy
from attacks.label_recovery import counts_to_labels, last_bias_name, local_step_count, recover_labels
from audit.core.attack import AttackView
from audit.core.errors import InvalidParameterError
from audit.core.updates import UpdateKind


def interpolated_label_counts(view: AttackView, *, generator: torch.Generator, samples: int = 64,
                              device: torch.device | str = "cpu") -> tuple[torch.Tensor, str]:
    """The labels behind a client's update as a sorted vector of length ``view.batch_size``,
    and the method used (``known``, ``fedsgd-counts``, ``idlg`` or ``interpolated-counts``)."""
    training = view.local_training
    if view.labels is not None:
        return view.labels.clone(), "known"
    if view.target.kind is UpdateKind.GRADIENT or training.optimizer == "adam":
        labels = recover_labels(view, generator=generator)
        return labels, "idlg" if view.batch_size == 1 else "fedsgd-counts"
    name = last_bias_name(view.model)
    if name not in view.target.tensors:
        raise InvalidParameterError(
            f"FedAvg label recovery reads the update of the last layer's bias ({name!r}), which the "
            "observed update does not contain. Use --threat-model hbc-server-labels (labels known). "
            f"Got an update of {len(view.target.tensors)} tensor(s) without it instead.")
    model, params = attack_copy(view.model, device, view.target.tensors, training)
    delta = {n: view.target.tensors[n].detach().to(device) for n in params}
    n_examples = view.batch_size
    steps = local_step_count(view)
    mu = training.momentum
    dummy = torch.rand((samples, *view.input_shape), generator=generator).to(device)
    weighted_p = torch.zeros(view.num_classes, dtype=torch.float64)
    weighted_b = torch.zeros(view.num_classes, dtype=torch.float64)
    total_w = 0.0
    with torch.no_grad():
        for t in range(steps):
            w = (1 - mu ** (steps - t)) / (1 - mu) if mu else 1.0
            theta = {n: p - (t / steps) * delta[n] for n, p in params.items()}
            probs = torch.softmax(functional_call(model, theta, (dummy,)), dim=-1).mean(0).double().cpu()
            weighted_p += w * probs
            weighted_b += w * theta[name].double().cpu()
            total_w += w
    bias_move = delta[name].double().cpu() / training.lr
    estimate = n_examples * (weighted_p + training.weight_decay * weighted_b - bias_move) / total_w
    return counts_to_labels(estimate, n_examples), "interpolated-counts"
