"""fedaudit's own threat models: the ``builtin`` entry point of group
``fedaudit.threat_models``."""

from __future__ import annotations

from audit.core.registry import Registry
from audit.core.threat_model import Adversary, Knowledge, ObservationPoint, ThreatModel

_WHITE_BOX = frozenset(
    {
        Knowledge.ARCHITECTURE,
        Knowledge.BROADCAST_WEIGHTS,
        Knowledge.LOCAL_TRAINING,
        Knowledge.BATCH_SIZE,
        Knowledge.DEFENSE_PARAMS,
        Knowledge.DATA_PRIOR,
    }
)

#: what the server itself holds beyond the white box
_SERVER = _WHITE_BOX | {Knowledge.SERVER_STATE}


def register(registry: Registry) -> None:
    """Register the built-in adversaries."""
    registry.register(
        "hbc-server",
        lambda: ThreatModel(
            "hbc-server",
            Adversary.SERVER,
            ObservationPoint.CLIENT_UPDATE,
            _SERVER,
            "The server follows the protocol but inspects each client's observation; it knows the "
            "model it broadcast, the architecture, the training schedule and its own state (e.g. "
            "DR-Encoder's decoder), not the labels.",
        ),
        summary="honest-but-curious server that sees each client's observation",
    )
    registry.register(
        "hbc-server-labels",
        lambda: ThreatModel(
            "hbc-server-labels",
            Adversary.SERVER,
            ObservationPoint.CLIENT_UPDATE,
            _SERVER | {Knowledge.LABELS},
            "As hbc-server, and the adversary also knows the labels of the client's batch "
            "(a strictly stronger adversary).",
        ),
        summary="honest-but-curious server that also knows the labels",
    )
    registry.register(
        "aggregate-observer",
        lambda: ThreatModel(
            "aggregate-observer",
            Adversary.ANALYST,
            ObservationPoint.AGGREGATE,
            _WHITE_BOX,
            "The adversary sees only the aggregated update (as with central DP, a trusted server "
            "or secure aggregation): any client, or anyone holding successive global models.",
        ),
        summary="sees only the aggregate (central DP's adversary)",
    )
    registry.register(
        "eavesdropper",
        lambda: ThreatModel(
            "eavesdropper",
            Adversary.EAVESDROPPER,
            ObservationPoint.CLIENT_UPDATE,
            _WHITE_BOX,
            "Anyone on the client-server link: it sees each client's observation and the broadcast "
            "model, knows the public protocol and parameters, but not the server's private state "
            "(e.g. DR-Encoder's decoder).",
        ),
        summary="sees each client's observation on the link, without the server's private state",
    )

    registry.register(
        "model-analyst",
        lambda: ThreatModel(
            "model-analyst",
            Adversary.ANALYST,
            ObservationPoint.FINAL_MODEL,
            frozenset({Knowledge.ARCHITECTURE, Knowledge.TRAINING_PROCEDURE,
                       Knowledge.POPULATION_DATA, Knowledge.DATA_PRIOR, Knowledge.DEFENSE_PARAMS}),
            "Anyone holding the released global model (any client, or a user of the model): it "
            "queries the model's outputs on candidate examples, and knows the training "
            "procedure and data from the same distribution, so it can train shadow models "
            "(the LiRA / RMIA adversary).",
        ),
        summary="holds the final model, knows the training procedure and population data (LiRA, RMIA)",
    )
    registry.register(
        "hbc-server-population",
        lambda: ThreatModel(
            "hbc-server-population",
            Adversary.SERVER,
            ObservationPoint.CLIENT_UPDATE,
            _SERVER | {Knowledge.POPULATION_DATA},
            "As hbc-server, and the server also holds population data from the same "
            "distribution (disjoint from the candidates): the update-based membership adversary.",
        ),
        summary="honest-but-curious server with population data (update-based membership)",
    )
    registry.register(
        "malicious-server",
        lambda: ThreatModel(
            "malicious-server",
            Adversary.MALICIOUS_SERVER,
            ObservationPoint.CLIENT_UPDATE,
            _SERVER | {Knowledge.POPULATION_DATA},
            "The server departs from the protocol: before the attacked round it broadcasts a "
            "model of its own making (e.g. an imprint module in front, or trap weights in the "
            "first layer; Fowl et al. 2022, Boenisch et al. 2023) and reads each client's "
            "observation of it. It holds public data from the same distribution.",
        ),
        summary="malicious server that crafts the broadcast model and sees each client's observation",
    )
    registry.register(
        "malicious-server-secagg",
        lambda: ThreatModel(
            "malicious-server-secagg",
            Adversary.MALICIOUS_SERVER,
            ObservationPoint.AGGREGATE,
            _SERVER | {Knowledge.POPULATION_DATA},
            "As malicious-server, under secure aggregation: the server still crafts the "
            "broadcast model but sees only the aggregate of the round's clients (what secure "
            "aggregation alone leaves it).",
        ),
        summary="malicious server under secure aggregation: crafts the model, sees only the aggregate",
    )

    registry.register(
        "proxy-client",
        lambda: ThreatModel(
            "proxy-client",
            Adversary.CLIENT,
            ObservationPoint.BROADCAST,
            frozenset({Knowledge.ARCHITECTURE, Knowledge.LOCAL_TRAINING, Knowledge.DEFENSE_PARAMS,
                       Knowledge.DATA_PRIOR}),
            "One participating client, or a coalition of clients pooling what they receive: the "
            "proxy models the server sends them (FedQSN: masked, quantized) over the rounds they "
            "take part in, and their own data; they know the architecture and the defense's public "
            "parameters (rates, bits), not the global weights. Their goal: the global model.",
        ),
        summary="a client or coalition of clients collecting the proxies it receives (model extraction)",
    )
