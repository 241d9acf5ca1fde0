"""Attacks on a run of Flower's own simulation engine (or a deployment): a strategy wrapper
records what the server observes, and each threat model's view is built from the record.

:func:`recording_strategy` wraps any Flower (Message API) strategy. It passes every call
through and records, per round, the broadcast weights, each reply's arrays after the
client's mods (what the server receives, by node id; their metrics too) and the new global
weights, as a fedaudit :class:`audit.fl.simulation.Transcript` of model deltas
(``broadcast - weights``). :func:`attack_views` then builds the
:class:`audit.core.attack.AttackView` of one round for a threat model: each client's reply
(``hbc-server``, ``eavesdropper``) or the aggregate (``aggregate-observer``), with the
model loaded with that round's broadcast. An attack from the registry runs on the views as
it does in fedaudit's own simulation.

Project choices: the record keeps the model's trainable parameters only (buffers such as
normalisation constants are not an update); fedaudit round ``r`` is Flower's server round
``r + 1``; the adversary knows the clients' public local training (steps, learning rate),
which the caller states, as with any fedaudit threat model.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from audit.core.attack import AttackView
from audit.fl.flower_runtime import from_arrays, import_flwr, single_arrays
from audit.fl.simulation import RoundRecord, Transcript
from audit.core.threat_model import ObservationPoint, create_threat_model
from audit.core.updates import LocalTraining, ModelUpdate, UpdateKind


def recording_strategy(strategy: Any) -> Any:
    """``strategy`` wrapped so that it records its rounds (``.transcript``, ``.metrics``)."""
    import_flwr("recording_strategy")
    from flwr.serverapp.strategy import Strategy

    class RecordingStrategy(Strategy):
        """Passes every call to ``strategy`` and records what the server observed."""

        def __init__(self) -> None:
            super().__init__()
            self.strategy = strategy
            self.transcript = Transcript()
            #: per recorded round: node id -> the reply's metrics
            self.metrics: list[dict[int, dict[str, Any]]] = []
            self._broadcast: dict[int, dict[str, torch.Tensor]] = {}

        def summary(self) -> None:
            self.strategy.summary()

        def configure_train(self, server_round, arrays, config, grid):  # noqa: ANN001
            self._broadcast[server_round] = from_arrays(arrays)
            return self.strategy.configure_train(server_round, arrays, config, grid)

        def aggregate_train(self, server_round, replies):  # noqa: ANN001
            replies = list(replies)
            broadcast = self._broadcast.pop(server_round)
            observations, metrics = [], {}
            for reply in replies:
                if reply.has_error():
                    continue
                node = int(reply.metadata.src_node_id)
                _, record = single_arrays(reply, f"The reply of node {node}")
                sent = from_arrays(record)
                m = next(iter(reply.content.metric_records.values()), {})
                metrics[node] = dict(m)
                observations.append(ModelUpdate(
                    UpdateKind.MODEL_DELTA, {n: broadcast[n] - sent[n] for n in sent if n in broadcast},
                    client_id=node, round=server_round - 1,
                    num_examples=int(m.get("num-examples", 1))))
            arrays, agg_metrics = self.strategy.aggregate_train(server_round, replies)
            if arrays is not None and observations:
                new = from_arrays(arrays)
                aggregate = ModelUpdate(UpdateKind.MODEL_DELTA,
                                        {n: broadcast[n] - new[n] for n in new if n in broadcast},
                                        round=server_round - 1,
                                        num_examples=sum(o.num_examples for o in observations))
                self.transcript.rounds.append(RoundRecord(
                    server_round - 1, broadcast, sorted(o.client_id for o in observations),
                    observations, aggregate))
                self.metrics.append(metrics)
            return arrays, agg_metrics

        def configure_evaluate(self, server_round, arrays, config, grid):  # noqa: ANN001
            return self.strategy.configure_evaluate(server_round, arrays, config, grid)

        def aggregate_evaluate(self, server_round, replies):  # noqa: ANN001
            return self.strategy.aggregate_evaluate(server_round, replies)

    return RecordingStrategy()


def attack_views(transcript: Transcript, *, model: nn.Module, threat_model: str,
                 local_training: LocalTraining, batch_size: int, input_shape: tuple[int, int, int],
                 num_classes: int, round: int = 0, defense_params: dict[str, Any] | None = None,
                 ) -> list[tuple[int | None, AttackView]]:
    """The views of round ``round`` for ``threat_model``: (node id, view) per client reply,
    or (None, view) of the aggregate."""
    record = next((r for r in transcript.rounds if r.round == round), None)
    if record is None:
        from audit.core.errors import InvalidParameterError

        raise InvalidParameterError(
            f"The 'round' parameter must be a recorded round "
            f"({[r.round for r in transcript.rounds]}). Got {round!r} instead.")
    tm = create_threat_model(threat_model)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    view_model = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in view_model.named_parameters():
            if n in record.broadcast:
                p.copy_(record.broadcast[n].to(p.dtype))
    dtypes = {n: p.dtype for n, p in model.named_parameters()}

    def view(update: ModelUpdate) -> AttackView:
        kept = {n: t.to(dtypes[n]) for n, t in update.tensors.items() if n in trained}
        return AttackView(threat_model=tm, model=view_model, target=update.with_tensors(kept),
                          local_training=local_training, batch_size=batch_size,
                          input_shape=input_shape, num_classes=num_classes,
                          defense_params=dict(defense_params or {}))

    if tm.observes is ObservationPoint.CLIENT_UPDATE:
        return [(o.client_id, view(o)) for o in record.observations]
    return [(None, view(record.aggregate))]
