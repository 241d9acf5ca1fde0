"""In-process federated simulation that records what each threat model may observe.

One round: broadcast -> each sampled client computes its update on its local data ->
defense client side -> observation -> defense server side -> aggregate -> new global model.
The :class:`Transcript` keeps the broadcast weights, every observation and every
aggregate; the clients' data (the ground truth) stays in the simulation and is handed to
scoring only, never to an attack.

Choices: clients run their :class:`LocalTraining` (by default ``steps`` full-batch SGD
steps on their whole local data, the gradient-inversion setting where a client's data is
one batch; or the user's epochs of minibatches, optimizer, loss and mode); the server
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
from audit.core.errors import InvalidParameterError
from audit.core.updates import ClientData, LocalTraining, ModelUpdate, UpdateKind
from audit.fl.local_steps import loss_function, minibatch_schedule, optimizer_step, set_training_mode, training_mode

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
    """A client's raw update from the broadcast ``model`` (left unchanged, its module modes
    included): tensors for the parameters it trains only (:func:`trained_names`; frozen
    ones, e.g. a LoRA base, never leave the client). The local steps follow ``training``
    (:mod:`audit.fl.local_steps`: minibatch order, loss, module mode, SGD or Adam)."""
    loss_fn = loss_function(training, data.images.device)
    names = trained_names(model, trainable)
    params = dict(model.named_parameters())
    if training.kind is UpdateKind.GRADIENT:
        with training_mode(model, training):
            grads = torch.autograd.grad(loss_fn(model(data.images), data.labels),
                                        [params[n] for n in names])
        tensors = {n: g.detach().clone() for n, g in zip(names, grads)}
    else:
        local = set_training_mode(copy.deepcopy(model), training)
        local_params = dict(local.named_parameters())
        weights = {n: local_params[n] for n in names}
        schedule = minibatch_schedule(len(data.labels), training, client_id=client_id, round=round)
        batches = [None] * training.steps if schedule is None else schedule
        state: dict = {}
        for idx in batches:
            x, y = (data.images, data.labels) if idx is None else (data.images[idx], data.labels[idx])
            grads = torch.autograd.grad(loss_fn(local(x), y), list(weights.values()))
            with torch.no_grad():
                # torch.optim's rules written out (audit.fl.local_steps.optimizer_step), because
                # torch.optim imports torch._dynamo on first use (~1.7 s in every fresh
                # process, e.g. each Ray worker of a shadow sweep)
                new = optimizer_step(weights, dict(zip(names, grads)), state, training)
                for n, w in weights.items():
                    w.copy_(new[n])
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
        training: LocalTraining | None = None,
    ) -> None:
        if len(clients) != schedule.num_clients:
            raise ValueError("one ClientData per client is needed")
        if schedule.sampling != "fixed":
            raise InvalidParameterError(
                "The 'sampling' parameter of the schedule must be 'fixed' on the loop simulation (it "
                "draws exactly clients_per_round clients a round); Poisson sampling runs on the "
                f"vectorised path (audit.fl.vectorised_clients). Got {schedule.sampling!r} instead.")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.clients = [c.to(self.device) for c in clients]
        self.public = None if public is None else public.to(self.device)
        #: the clients' local training: the user's description (``training``) or the
        #: defense's, with the task's class weights
        self.training = training or defense.local_training
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
