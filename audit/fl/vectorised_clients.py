"""Many clients, vectorised: the clients of a round as a batch dimension of one computation.

The loop path (:class:`audit.fl.simulation.FederatedSimulation`) runs each sampled client's
local training, client side and observation one after another. Here the sampled clients'
data are stacked (zero-padded to the largest client, with each client's real length), the
forward pass is ``torch.func.vmap`` over clients of a ``torch.func.functional_call`` with
each client's own weights (torch.func's model-ensembling recipe), and one backward pass of
the sum of the clients' losses gives every client's own gradient, exactly (client k's
weights reach only its own loss). The defense's client side runs batched too, then the
server's aggregate.

:func:`vectorisable` says whether a run can take this path and, if not, why;
:func:`simulate` takes it when it can and otherwise runs the loop, and its
:class:`SimulationResult` says which path ran and why, so a report can state it.

Choices of this project (first increment of issue 24, item 1):

* Defenses: FedAvg and FedSGD (identity client side, mean weighted by examples) and
  DP-FedAvg around one of them (per-client flat L2 clip to ``clip_norm`` C; ``local``: each
  client adds ``N(0, (z C)^2)``; ``central``: the server sums the clipped updates, adds
  ``N(0, (z C)^2)`` once and divides by ``clients_per_round``), recognised by their exact
  class (``defenses.fedavg.FedAvg``, ``defenses.fedavg.FedSGD``,
  ``defenses.dp_fedavg.DPFedAvg``) by name only, since :mod:`audit.fl` must not import
  :mod:`defenses`; a subclass may change the behaviour, so it runs on the loop. Any other
  defense opts in with the :class:`BatchedDefense` methods. A defense that overrides
  ``setup_server``, ``setup_client``, ``client_model`` or ``trainable`` runs on the loop.
* Local training: full-batch steps only (``batch_size`` None; minibatch orders are
  per-client), any optimizer of :func:`audit.fl.local_steps.optimizer_step` (SGD with
  momentum and weight decay, Adam), the cross-entropy loss with the task's class weights
  and ``ignore_index=-100``, averaged over each client's real examples only. A user's
  loss, BatchNorm/InstanceNorm layers (batch statistics over padded clients) and active
  dropout (random masks under vmap) run on the loop.
* The backward pass is ``torch.autograd.grad``, not ``torch.func.grad``, which imports
  ``torch._dynamo`` on first use (~1 s in every fresh process, e.g. each sweep worker).
* Same numbers as the loop up to float32 rounding, for the updates and, with the same seed,
  for the fixed-size client sample and DP-FedAvg's central noise; DP-FedAvg's local noise is
  drawn per tensor for all clients at once: the same distribution, other draws than the loop.
* Sampling: ``fixed`` (``clients_per_round`` uniformly without replacement, the loop's rule
  and draws) or ``poisson`` (each client independently at rate
  ``clients_per_round / num_clients``, the accountant's assumption; a round may be empty,
  then FedAvg's aggregate is zero and DP-FedAvg central releases noise only).
* Observations are not kept by default (thousands of clients): each round records the
  broadcast, the sampled ids and the aggregate; ``keep_observations=True`` keeps them too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from audit.core.defense import CLIENT_SAMPLINGS, Defense, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.core.updates import ClientData, LocalTraining, ModelUpdate, UpdateKind
from audit.core.validation import check_interval, check_options
from audit.fl.batched_defenses import BatchedDefense, batched_client_side, batched_sides, vectorisable
from audit.fl.local_steps import optimizer_step, training_mode
from audit.fl.simulation import FederatedSimulation, RoundRecord, Transcript, trained_names

__all__ = ["BatchedDefense", "SAMPLINGS", "SimulationResult", "batched_client_side", "batched_updates",
           "run_vectorised", "sample_clients", "simulate", "stack_clients", "vectorisable"]
# BatchedDefense, batched_client_side and vectorisable live in audit.fl.batched_defenses

Tensors = dict[str, torch.Tensor]
SAMPLINGS = CLIENT_SAMPLINGS
PATHS = ("auto", "vectorised", "loop")
_OWNER = "the vectorised simulation"


def stack_clients(clients: Sequence[ClientData], device: torch.device | str | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (K, L, ...), labels (K, L, ...) zero-padded to the largest client's L
    examples, and each client's real length (K,)."""
    if not clients:
        raise InvalidParameterError(f"The 'clients' parameter of {_OWNER} must be a non-empty list. Got [] instead.")
    lengths, first = [len(c) for c in clients], clients[0]
    for k, c in enumerate(clients):
        check_interval(f"clients[{k}] examples", _OWNER, lengths[k], kind=int, low=1)
        if c.images.shape[1:] != first.images.shape[1:] or c.labels.shape[1:] != first.labels.shape[1:]:
            raise InvalidParameterError(
                f"Every client's examples must have one shape to be stacked. Got client {k} with images "
                f"{tuple(c.images.shape[1:])} beside {tuple(first.images.shape[1:])} instead.")
    n = torch.tensor(lengths)
    size = int(n.max())
    # one scatter of all examples into the padded (K * L) rows, not one copy per client
    offsets = torch.cumsum(n, 0) - n
    rows = torch.arange(int(n.sum())) - torch.repeat_interleave(offsets, n) + torch.repeat_interleave(
        torch.arange(len(clients)) * size, n)
    images = torch.zeros((len(clients) * size, *first.images.shape[1:]), dtype=first.images.dtype)
    labels = torch.zeros((len(clients) * size, *first.labels.shape[1:]), dtype=first.labels.dtype)
    images[rows] = torch.cat([c.images.cpu() for c in clients])
    labels[rows] = torch.cat([c.labels.cpu() for c in clients])
    shape = (len(clients), size)
    return (images.view(*shape, *images.shape[1:]).to(device), labels.view(*shape, *labels.shape[1:]).to(device),
            n.to(device))


def _client_losses(model: nn.Module, fixed: Tensors, training: LocalTraining, images: torch.Tensor,
                   labels: torch.Tensor, lengths: torch.Tensor) -> Callable[[Tensors], torch.Tensor]:
    """``losses(stacked weights) -> (K,)``: each client's cross-entropy (the task's class
    weights, ``ignore_index=-100``), averaged over its first ``lengths[k]`` examples only."""
    forward = vmap(lambda w, x: functional_call(model, {**fixed, **w}, (x,)))
    class_weight = training.loss_weight(images.device)
    k, size = labels.shape[:2]
    real = (torch.arange(size, device=labels.device) < lengths[:, None]).view(k, size, *[1] * (labels.dim() - 2))
    valid = real & (labels != -100)
    wy = valid.float() if class_weight is None else class_weight[labels.clamp_min(0)] * valid

    def losses(w: Tensors) -> torch.Tensor:
        logits = forward(w, images)
        per = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(0, 1), weight=class_weight,
                                          reduction="none").view(labels.shape)
        return (per * real).flatten(1).sum(1) / wy.flatten(1).sum(1)

    return losses


def batched_updates(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor,
                    training: LocalTraining, *, chunk_size: int | None = None) -> Tensors:
    """Every client's raw update from the broadcast ``model`` (unchanged), stacked: the
    gradient (FedSGD) or ``theta - theta_after_steps`` (FedAvg, ``training.steps`` steps of
    :func:`audit.fl.local_steps.optimizer_step`), for the trained parameters, the loss a
    mean over each client's first ``lengths[k]`` examples only (see the module docstring);
    ``chunk_size`` clients at a time bound the memory."""
    if chunk_size is not None and chunk_size < len(lengths):
        parts = [batched_updates(model, images[i:i + chunk_size], labels[i:i + chunk_size],
                                 lengths[i:i + chunk_size], training) for i in range(0, len(lengths), chunk_size)]
        return {n: torch.cat([p[n] for p in parts]) for n in parts[0]}
    names = trained_names(model)
    params = dict(model.named_parameters())
    fixed = {n: p.detach() for n, p in params.items() if n not in names}
    fixed.update({n: b.detach() for n, b in model.named_buffers()})
    k = len(lengths)
    broadcast = {n: params[n].detach().expand(k, *params[n].shape) for n in names}
    state: dict = {}
    with training_mode(model, training):
        losses = _client_losses(model, fixed, training, images, labels, lengths)
        local = broadcast
        for _ in range(training.steps):
            leaves = {n: t.detach().requires_grad_() for n, t in local.items()}
            grads = dict(zip(names, torch.autograd.grad(losses(leaves).sum(), list(leaves.values()))))
            if training.kind is UpdateKind.GRADIENT:
                return grads
            with torch.no_grad():
                local = optimizer_step(local, grads, state, training)
    with torch.no_grad():
        return {n: broadcast[n] - local[n] for n in names}


def sample_clients(schedule: FederationSchedule, sampling: str | None, generator: torch.Generator) -> list[int]:
    """The round's clients, sorted: ``fixed`` draws as the loop does (``randperm``, first
    ``clients_per_round``); ``poisson`` keeps each client with probability
    ``clients_per_round / num_clients``; None: the schedule's sampling."""
    sampling = check_options("sampling", _OWNER, sampling or schedule.sampling, SAMPLINGS)
    if sampling == "fixed":
        perm = torch.randperm(schedule.num_clients, generator=generator)
        return sorted(perm[: schedule.clients_per_round].tolist())
    keep = torch.rand(schedule.num_clients, generator=generator) < schedule.sample_rate
    return torch.nonzero(keep).flatten().tolist()


@dataclass
class SimulationResult:
    """A simulated run and how it ran: ``path`` "vectorised" or "loop", and why."""

    transcript: Transcript
    path: str
    reason: str
    sampling: str = "fixed"
    observations_kept: bool = True
    #: the clients' local training as run (with the task's class weights)
    training: LocalTraining | None = None

    def describe(self) -> dict[str, Any]:
        """What a report states about the simulation (JSON-ready)."""
        return {"path": self.path, "reason": self.reason, "sampling": self.sampling,
                "observations_kept": self.observations_kept}


def _with_sampling(schedule: FederationSchedule, sampling: str | None) -> FederationSchedule:
    if sampling is None:
        return schedule
    sampling = check_options("sampling", _OWNER, sampling, SAMPLINGS)
    return schedule if sampling == schedule.sampling else replace(schedule, sampling=sampling)


def _local_training(defense: Defense, training: LocalTraining | None,
                    class_weights: tuple[float, ...] | None) -> LocalTraining:
    training = training or defense.local_training
    return training if class_weights is None else replace(training, class_weights=tuple(class_weights))


def _observations(obs: Tensors, info: Tensors, sampled: list[int], lengths: torch.Tensor,
                  kind: UpdateKind, r: int) -> list[ModelUpdate]:
    return [ModelUpdate(kind=kind, tensors={n: t[i].clone() for n, t in obs.items()}, client_id=k, round=r,
                        num_examples=int(lengths[i]), info={n: float(v[i]) for n, v in info.items()})
            for i, k in enumerate(sampled)]


def run_vectorised(*, model: nn.Module, clients: Sequence[ClientData], defense: Defense,
                   schedule: FederationSchedule, seed: int = 0, device: torch.device | str = "cpu",
                   sampling: str | None = None, training: LocalTraining | None = None,
                   class_weights: tuple[float, ...] | None = None, keep_observations: bool = False,
                   chunk_size: int | None = None, progress: bool = False) -> SimulationResult:
    """Run ``defense`` over ``clients`` with clients batched; ``model`` is trained in place
    (moved to ``device``), the server step as the loop's: ``theta -= server_lr * aggregate``
    with ``server_lr`` the local lr for gradients and 1 for model deltas; ``sampling``
    (None: the schedule's) draws each round's clients."""
    schedule = _with_sampling(schedule, sampling)
    sampling = schedule.sampling
    if len(clients) != schedule.num_clients:
        raise InvalidParameterError(
            f"The 'clients' parameter of {_OWNER} must hold one ClientData per client "
            f"({schedule.num_clients}). Got {len(clients)} instead.")
    if chunk_size is not None:
        check_interval("chunk_size", _OWNER, chunk_size, kind=int, low=1)
    training = _local_training(defense, training, class_weights)
    ok, reason = vectorisable(defense, training, model)
    if not ok:
        raise InvalidParameterError(f"The defense {defense.name!r} cannot run vectorised: {reason}.")
    sides = batched_sides(defense)
    device = torch.device(device)
    model.to(device)
    images, labels, lengths = stack_clients(clients, device)
    sampler = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=device).manual_seed(seed + 1)
    server_lr = training.lr if training.kind is UpdateKind.GRADIENT else 1.0
    transcript = Transcript()
    for r in tqdm(range(schedule.rounds), desc="federated rounds", disable=not progress, leave=False):
        params = dict(model.named_parameters())
        broadcast = {n: p.detach().clone() for n, p in params.items()}
        sampled = sample_clients(schedule, sampling, sampler)
        idx = torch.tensor(sampled, dtype=torch.long, device=device)
        if sampled:
            raw = batched_updates(model, images[idx], labels[idx], lengths[idx], training, chunk_size=chunk_size)
        else:
            raw = {n: params[n].new_zeros((0, *params[n].shape)) for n in trained_names(model)}
        obs, info = sides.batched_client_side(raw, generator=noise)
        tensors = sides.batched_server_side(obs, lengths[idx], expected_clients=schedule.clients_per_round,
                                            generator=noise)
        aggregate = ModelUpdate(kind=training.kind, tensors=tensors, round=r,
                                num_examples=int(lengths[idx].sum()))
        with torch.no_grad():
            for n, t in tensors.items():
                params[n].sub_(server_lr * t)
        observations = (_observations(obs, info, sampled, lengths[idx], training.kind, r)
                        if keep_observations else [])
        transcript.rounds.append(RoundRecord(r, broadcast, sampled, observations, aggregate))
    return SimulationResult(transcript, "vectorised", reason, sampling, keep_observations, training)


def simulate(*, model: nn.Module, clients: Sequence[ClientData], defense: Defense,
             schedule: FederationSchedule, seed: int = 0, device: torch.device | str = "cpu",
             sampling: str | None = None, path: str = "auto", training: LocalTraining | None = None,
             class_weights: tuple[float, ...] | None = None, public: ClientData | None = None,
             keep_observations: bool = False, chunk_size: int | None = None,
             progress: bool = False) -> SimulationResult:
    """The rule: ``path="auto"`` runs vectorised when :func:`vectorisable` says so, else
    the loop (:class:`FederatedSimulation`, which keeps every observation and samples
    fixed-size only); ``"vectorised"`` or ``"loop"`` force one. The result names the path
    and the reason."""
    path = check_options("path", _OWNER, path, PATHS)
    schedule = _with_sampling(schedule, sampling)
    sampling = schedule.sampling
    resolved = _local_training(defense, training, class_weights)
    ok, reason = vectorisable(defense, resolved, model)
    if path == "vectorised" or (path == "auto" and ok):
        return run_vectorised(model=model, clients=clients, defense=defense, schedule=schedule, seed=seed,
                              device=device, training=resolved,
                              keep_observations=keep_observations, chunk_size=chunk_size, progress=progress)
    if path == "loop":
        reason = "the loop path was asked for"
    if sampling != "fixed":
        raise InvalidParameterError(
            f"The 'sampling' parameter of {_OWNER} must be 'fixed' on the loop path ({reason}). "
            f"Got {sampling!r} instead.")
    sim = FederatedSimulation(model=model, clients=clients, defense=defense, schedule=schedule, seed=seed,
                              device=device, public=public, training=resolved)
    return SimulationResult(sim.run(progress=progress), "loop", reason, sampling, True, resolved)
