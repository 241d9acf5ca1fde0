"""Update-based membership inference in federated learning: the honest-but-curious server
scores a candidate against one client's observed update (white-box: it knows the
broadcast model, the architecture and the local training schedule).

Signals (after Nasr et al. 2019, "Comprehensive privacy analysis of deep learning",
and the gradient-alignment tests of the FL membership literature):

* ``alignment``: cosine between the candidate's own gradient at the broadcast weights and
  the observed update (a member's gradient is a summand of the client's gradient).
* ``loss-change``: the drop of the candidate's loss when the observed update is applied
  to the broadcast model (``theta - lr * g`` for a gradient, ``theta - delta`` for a
  model delta).

With population data (threat model ``hbc-server-population``) the server first removes
the population's mean gradient from both the candidate's gradient and the observed update
(project choice: it cancels the direction shared by every example of the same
distribution, which otherwise dominates the cosine near initialisation).

Per-example gradients come from ``torch.func`` (``vmap`` over ``grad``), never from a
Python loop over examples.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from audit.core.attack import Attack, AttackResult, MembershipView
from audit.core.updates import UpdateKind
from audit.core.validation import check_interval, check_options


def per_example_gradients(model, inputs: torch.Tensor, labels: torch.Tensor, *,
                          chunk: int = 256, names=None) -> torch.Tensor:
    """(N, P) flattened per-example gradients of the cross-entropy at the model's weights,
    with respect to the parameters ``names`` (all by default; e.g. the LoRA factors a
    client sends), in that order."""
    named = dict(model.named_parameters())
    params = {k: named[k].detach() for k in (names if names is not None else named)}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    fixed = {k: v.detach() for k, v in named.items() if k not in params}

    def loss(p, x, y):
        out = functional_call(model, ({**fixed, **p}, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(out, y.unsqueeze(0))

    g = vmap(grad(loss), in_dims=(None, 0, 0))
    device = next(model.parameters()).device
    rows = []
    for i in range(0, len(labels), chunk):
        grads = g(params, inputs[i:i + chunk].to(device), labels[i:i + chunk].to(device))
        rows.append(torch.cat([grads[k].reshape(len(grads[k]), -1) for k in params], 1).cpu())
    return torch.cat(rows)


class UpdateMembership(Attack):
    """Score candidates against one client's observed update."""

    name = "update-mia"
    family = "membership-inference"
    default_threat_model = "hbc-server"

    def __init__(self, *, signal: str = "alignment", client: int = 0, round: int = 0) -> None:
        self.signal = check_options("signal", self.name, signal, ["alignment", "loss-change"])
        self.client = check_interval("client", self.name, client, kind=int, low=0)
        self.round = check_interval("round", self.name, round, kind=int, low=0)

    def params(self) -> dict[str, Any]:
        return {"signal": self.signal, "client": self.client, "round": self.round}

    def run(self, view: MembershipView, *, generator: torch.Generator, device: torch.device,
            progress: bool = False) -> AttackResult:
        if view.observation is None:
            raise ValueError("the update-based attack needs an observed client update")
        # what the client sent: every parameter, or only those it trains (e.g. LoRA)
        names = [k for k, _ in view.model.named_parameters() if k in view.observation.tensors]
        update = torch.cat([view.observation.tensors[k].reshape(-1).float().cpu() for k in names])
        if self.signal == "alignment":
            g = per_example_gradients(view.model, view.candidates.inputs, view.candidates.labels,
                                      names=names)
            if view.population is not None and len(view.population):
                mean = per_example_gradients(view.model, view.population.inputs,
                                             view.population.labels, names=names).mean(0)
                g = g - mean
                scale = 1.0 if view.observation.kind is UpdateKind.GRADIENT else (
                    view.local_training.lr * view.local_training.steps)
                update = update - scale * mean
            score = F.cosine_similarity(g, update.unsqueeze(0), dim=1)
        else:
            score = self._loss_change(view, update)
        return AttackResult(scores=score.float())

    @torch.no_grad()
    def _loss_change(self, view: MembershipView, update: torch.Tensor) -> torch.Tensor:
        import copy

        from attacks.membership_signals import query

        step = view.local_training.lr if view.observation.kind is UpdateKind.GRADIENT else 1.0
        after = copy.deepcopy(view.model)
        offset = 0
        for name, p in after.named_parameters():
            if name not in view.observation.tensors:
                continue
            n = p.numel()
            p.sub_(step * update[offset:offset + n].view_as(p).to(p.device))
            offset += n
        c = view.candidates
        before = query(view.model, c.inputs, c.labels, ((0, 0),), "loss")[:, 0]
        return before - query(after, c.inputs, c.labels, ((0, 0),), "loss")[:, 0]
