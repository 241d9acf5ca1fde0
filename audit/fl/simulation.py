"""In-process federated simulation that records what each threat model may observe.

One round: broadcast -> each sampled client computes its update on its local data ->
defense client side -> observation -> defense server side -> aggregate -> new global model.
The :class:`Transcript` keeps the broadcast weights, every observation and every
aggregate; the clients' data (the ground truth) stays in the simulation and is handed to
scoring only, never to an attack.

Choices: clients run ``LocalTraining.steps`` full-batch SGD steps on their whole local
data (the gradient-inversion setting, where a client's data is one batch); the server
applies ``theta <- theta - server_lr * aggregate`` with ``server_lr = local lr`` for
gradients and 1 for model deltas; client sampling is uniform without replacement with a
seeded generator (the accountant is told the sampling rate).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from audit.core.defense import Defense, FederationSchedule
from audit.core.updates import ClientData, LocalTraining, ModelUpdate, UpdateKind

__all__ = ["ClientData", "FederatedSimulation", "RoundRecord", "Transcript", "local_update",
           "trained_names"]


@dataclass
class RoundRecord:
    """Everything that crossed the wire in one round."""

    round: int
    broadcast: dict[str, torch.Tensor]
    sampled: list[int]
    observations: list[ModelUpdate]
    aggregate: ModelUpdate
    #: what each client received when it was not the broadcast (``Defense.client_model``)
    received: dict[int, Any] = field(default_factory=dict)


@dataclass
class Transcript:
    """The whole run, as observable by the most powerful adversary."""

    rounds: list[RoundRecord] = field(default_factory=list)


def trained_names(model: nn.Module, trainable: Collection[str] | None = None) -> list[str]:
    """The parameters a client trains: those with ``requires_grad``, restricted to
    ``trainable`` when the defense names them (e.g. one LoRA factor per phase)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if trainable is None:
        return names
    unknown = set(trainable) - set(names)
    if unknown:
        raise ValueError(f"trainable names {sorted(unknown)[:3]} are not trainable parameters")
    return [n for n in names if n in trainable]


def local_update(
    model: nn.Module, data: ClientData, training: LocalTraining, *, client_id: int, round: int,
    trainable: Collection[str] | None = None,
) -> ModelUpdate:
    """A client's raw update from the broadcast ``model`` (left unchanged): tensors for the
    parameters it trains only (:func:`trained_names`; frozen ones, e.g. a LoRA base, never
    leave the client)."""
    loss_fn = nn.CrossEntropyLoss(weight=training.loss_weight(data.images.device))
    names = trained_names(model, trainable)
    params = dict(model.named_parameters())
    if training.kind is UpdateKind.GRADIENT:
        grads = torch.autograd.grad(loss_fn(model(data.images), data.labels),
                                    [params[n] for n in names])
        tensors = {n: g.detach().clone() for n, g in zip(names, grads)}
    else:
        local = copy.deepcopy(model)
        local_params = dict(local.named_parameters())
        weights = [local_params[n] for n in names]
        buffers: list[torch.Tensor] | None = None
        for _ in range(training.steps):
            grads = torch.autograd.grad(loss_fn(local(data.images), data.labels), weights)
            with torch.no_grad():
                # SGD as torch.optim.SGD computes it, bit for bit (plain, or heavy-ball with
                # the buffer starting at the first gradient); written out because
                # torch.optim imports torch._dynamo on first use (~1.7 s in every fresh
                # process, e.g. each Ray worker of a shadow sweep)
                if training.momentum:
                    if buffers is None:
                        buffers = [g.detach().clone() for g in grads]
                    else:
                        for b, g in zip(buffers, grads):
                            b.mul_(training.momentum).add_(g)
                    grads = buffers
                for w, g in zip(weights, grads):
                    w.add_(g, alpha=-training.lr)
        tensors = {n: (params[n] - local_params[n]).detach().clone() for n in names}
    return ModelUpdate(
        kind=training.kind,
        tensors=tensors,
        client_id=client_id,
        round=round,
        num_examples=len(data.labels),
    )


class FederatedSimulation:
    """Runs ``defense`` over ``clients`` for ``schedule.rounds`` rounds."""

    def __init__(
        self,
        *,
        model: nn.Module,
        clients: Sequence[ClientData],
        defense: Defense,
        schedule: FederationSchedule,
        seed: int = 0,
        device: torch.device | str = "cpu",
        public: ClientData | None = None,
        class_weights: tuple[float, ...] | None = None,
    ) -> None:
        if len(clients) != schedule.num_clients:
            raise ValueError("one ClientData per client is needed")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.clients = [c.to(self.device) for c in clients]
        self.public = None if public is None else public.to(self.device)
        #: the clients' local training: the defense's, with the task's class weights
        self.training = defense.local_training
        if class_weights is not None:
            self.training = replace(self.training, class_weights=tuple(class_weights))
        self.defense = defense
        self.schedule = schedule
        self.seed = seed

    def run(self, *, progress: bool = False) -> Transcript:
        """Simulate every round and return the transcript."""
        sampler = torch.Generator().manual_seed(self.seed)
        noise = torch.Generator(device=self.device).manual_seed(self.seed + 1)
        transcript = Transcript()
        training = self.training
        self.defense.setup_server(model=self.model, public=self.public, training=training)
        rounds = range(self.schedule.rounds)
        for r in tqdm(rounds, desc="federated rounds", disable=not progress, leave=False):
            broadcast = {n: p.detach().clone() for n, p in self.model.named_parameters()}
            perm = torch.randperm(self.schedule.num_clients, generator=sampler)
            sampled = sorted(perm[: self.schedule.clients_per_round].tolist())
            observations, received = [], {}
            for k in sampled:
                self.defense.setup_client(client_id=k, model=self.model, data=self.clients[k],
                                          round=r)
                proxy = self.defense.client_model(self.model, client_id=k, round=r)
                if proxy is not None:
                    received[k] = proxy[1]
                raw = local_update(self.model if proxy is None else proxy[0], self.clients[k],
                                   training, client_id=k, round=r,
                                   trainable=self.defense.trainable(r))
                observations.append(self.defense.client_side(raw, generator=noise))
            aggregate = self.defense.server_side(observations, generator=noise)
            server_lr = training.lr if aggregate.kind is UpdateKind.GRADIENT else 1.0
            params = dict(self.model.named_parameters())
            with torch.no_grad():
                for n, t in aggregate.tensors.items():
                    params[n].sub_(server_lr * t)
            transcript.rounds.append(RoundRecord(r, broadcast, sampled, observations, aggregate,
                                                 received))
        return transcript
