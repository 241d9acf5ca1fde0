"""A fedaudit defense exported to Flower: what was audited is what gets deployed.

* :func:`defense_mod` is a Flower client mod that runs ``defense.client_side`` on the
  client's update (broadcast weights minus the weights its ``ClientApp`` returns) and sends
  the observation instead of the weights.
* :class:`DefenseStrategy` (a subclass of Flower's ``FedAvg``, built by
  :func:`defense_strategy`) hands the observations to ``defense.server_side`` and applies
  its aggregate to the broadcast weights (``theta - aggregate``, fedaudit's convention for
  model deltas).

Both run the same ``client_side`` / ``server_side`` code the audit ran, so the claim and the
audit's evidence carry over. Supported: defenses that act on updates alone (FedAvg,
DP-FedAvg, the layer-wise LDP baselines...); defenses that need the global model or the
client's data beside its update (FedQSN's proxy, DR-Encoder's statistics rounds, FedRE's PSI
scores) are refused with an error naming them.

:func:`write_recording` writes what a :func:`~audit.integrations.flower.recording.recording_strategy`
recorded as a recorded-updates directory (:mod:`audit.fl.recorded_updates`), which
``fedaudit audit --observed DIR`` audits offline: the same format as ``fedaudit record``, the
clients named by their Flower node ids.

Project choices: the generator of each call is seeded from ``(seed, node id, round)`` (a
client's noise is reproducible, and two clients never share it); observations travel in
the update's dtype; a round's Flower server round ``r`` is fedaudit round ``r - 1``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import torch

from audit.core.defense import Defense, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.fl.flower_runtime import from_arrays, import_flwr, single_arrays, to_arrays
from audit.core.updates import ModelUpdate, UpdateKind
from audit.fl.recorded_updates import Deployment

WEIGHT_KEY = "num-examples"


def _generator(seed: int, node: int, server_round: int) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}:{node}:{server_round}".encode()))


def check_exportable(defense: Defense) -> Defense:
    """``defense``, or an error when it needs more than updates on either side."""
    needs = [hook for hook in ("client_model", "setup_client")
             if getattr(type(defense), hook) is not getattr(Defense, hook)]
    if defense.first_update_round() > 0:
        needs.append("first_update_round")
    if needs:
        raise InvalidParameterError(
            f"The 'defense' parameter must act on updates alone to run as a Flower strategy; "
            f"{defense.name!r} also needs {', '.join(needs)}. Got {defense.name!r} instead.")
    return defense


def defense_mod(defense: Defense, *, seed: int = 0) -> Callable[[Any, Any, Any], Any]:
    """A Flower client mod applying ``defense.client_side`` to TRAIN replies."""
    import_flwr("defense_mod")
    check_exportable(defense)

    def fedaudit_defense_mod(msg: Any, context: Any, call_next: Any) -> Any:
        from flwr.app import MessageType

        if msg.metadata.message_type != MessageType.TRAIN:
            return call_next(msg, context)
        _, sent = single_arrays(msg, "The server's TRAIN message")
        broadcast = from_arrays(sent)
        reply = call_next(msg, context)
        if reply.has_error():
            return reply
        key, record = single_arrays(reply, "The ClientApp's reply")
        config = next(iter(msg.content.config_records.values()), {})
        server_round = int(config.get("server-round", 1))
        metrics = next(iter(reply.content.metric_records.values()), {})
        weights = from_arrays(record)
        update = ModelUpdate(
            kind=UpdateKind.MODEL_DELTA,
            tensors={n: broadcast[n] - weights[n] for n in weights},
            client_id=int(context.node_id), round=server_round - 1,
            num_examples=int(metrics.get(WEIGHT_KEY, 1)))
        observed = defense.client_side(update, generator=_generator(seed, context.node_id, server_round))
        reply.content[key] = to_arrays(observed.tensors, double=False)
        return reply

    return fedaudit_defense_mod


def defense_strategy(defense: Defense, schedule: FederationSchedule, *, seed: int = 0,
                     **fedavg: Any) -> Any:
    """A Flower strategy running ``defense.server_side`` (after ``defense.prepare(schedule)``);
    ``fedavg`` goes to Flower's ``FedAvg`` (sampling, minimum nodes...)."""
    import_flwr("defense_strategy")
    from flwr.serverapp.strategy import FedAvg

    check_exportable(defense)
    defense.prepare(schedule)

    class DefenseStrategy(FedAvg):
        """Flower's FedAvg sampling and messaging, fedaudit ``defense`` aggregation."""

        def __init__(self) -> None:
            super().__init__(**fedavg)
            self.defense = defense
            self._broadcast: dict[int, dict[str, torch.Tensor]] = {}

        def configure_train(self, server_round, arrays, config, grid):  # noqa: ANN001
            self._broadcast[server_round] = from_arrays(arrays)
            return super().configure_train(server_round, arrays, config, grid)

        def aggregate_train(self, server_round, replies):  # noqa: ANN001
            replies = [r for r in replies if not r.has_error()]
            broadcast = self._broadcast.pop(server_round)
            if not replies:
                return None, None
            observations = []
            for reply in replies:
                _, record = single_arrays(reply, "A client's reply")
                metrics = next(iter(reply.content.metric_records.values()), {})
                observations.append(ModelUpdate(
                    kind=UpdateKind.MODEL_DELTA, tensors=from_arrays(record),
                    client_id=int(reply.metadata.src_node_id), round=server_round - 1,
                    num_examples=int(metrics.get(self.weighted_by_key, 1))))
            aggregate = self.defense.server_side(
                observations, generator=_generator(seed, 0, server_round))
            new = {n: (t - aggregate.tensors[n].to(t.dtype)) if n in aggregate.tensors else t
                   for n, t in broadcast.items()}
            metrics = self.train_metrics_aggr_fn([r.content for r in replies], self.weighted_by_key)
            return to_arrays(new, double=False), metrics

    return DefenseStrategy()


def write_recording(strategy: Any, out: Any, deployment: Deployment, **extra: Any) -> Any:
    """Write the rounds ``strategy`` (a recording strategy, or its ``.transcript``) recorded
    as the recorded-updates directory ``out``; ``deployment`` says what ran (the model's
    entry point, the data's shape, the clients' local training, which Flower replies make
    model deltas). ``extra`` goes to :func:`audit.fl.recorded_updates.write_recording`
    (``labels``, ``truth``..., keyed by node id)."""
    from audit.fl.recorded_updates import write_recording as write

    if deployment.local_training.kind is not UpdateKind.MODEL_DELTA:
        raise InvalidParameterError(
            "The 'deployment' parameter of write_recording must describe model-delta local "
            "training (a Flower reply is the client's new weights). Got "
            f"{deployment.local_training.kind.value!r} instead.")
    return write(out, getattr(strategy, "transcript", strategy), deployment, **extra)
