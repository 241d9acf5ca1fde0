"""Threat models as data: who the adversary is, what it observes, what it knows.

An attack is handed an :class:`~audit.attack.AttackView` built by :func:`build_view` from a
simulation transcript, and the view contains exactly what the threat model lets the
adversary observe (see ``../shared/specs/attacks.md``). Knowledge items gate optional
side information (e.g. the true labels) so an attack cannot read what its adversary does
not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from audit.registry import Registry


class Adversary(str, Enum):
    """Who attacks."""

    SERVER = "honest-but-curious server"
    EAVESDROPPER = "eavesdropper on the client-server link"
    CLIENT = "participating client"
    ANALYST = "analyst of the released model"


class ObservationPoint(str, Enum):
    """Where in the data flow the adversary looks."""

    CLIENT_UPDATE = "one client's observation (what leaves the client after the client-side defense)"
    AGGREGATE = "the aggregate after the server-side defense (the next global model's update)"
    BROADCAST = "the model the server broadcasts"
    FINAL_MODEL = "the final global model (its outputs on chosen inputs)"


class Knowledge(str, Enum):
    """Side information the adversary holds."""

    ARCHITECTURE = "model architecture"
    BROADCAST_WEIGHTS = "broadcast model weights"
    LOCAL_TRAINING = "client's local training schedule (steps, learning rate)"
    BATCH_SIZE = "client's batch size"
    LABELS = "true labels of the client's batch"
    DEFENSE_PARAMS = "the defense's public parameters"
    DATA_PRIOR = "the data domain (image shape, value range)"
    TRAINING_PROCEDURE = "the whole training procedure (defense, schedule, model), to train shadow models"
    POPULATION_DATA = "population data from the same distribution, disjoint from the candidates"
    SERVER_STATE = "the defense's server-private state (e.g. DR-Encoder's decoder)"


@dataclass(frozen=True)
class ThreatModel:
    """Who the adversary is, what it observes and what it knows."""

    name: str
    adversary: Adversary
    observes: ObservationPoint
    knows: frozenset[Knowledge] = field(default_factory=frozenset)
    description: str = ""

    def to_dict(self) -> dict:
        """JSON-ready form for the report."""
        return {
            "name": self.name,
            "adversary": self.adversary.value,
            "observes": self.observes.value,
            "knows": sorted(k.value for k in self.knows),
            "description": self.description,
        }

    def knows_(self, item: Knowledge) -> bool:
        """Whether the adversary holds ``item``."""
        return item in self.knows


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

THREAT_MODELS: Registry[ThreatModel] = Registry("threat model")
THREAT_MODELS.register(
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
THREAT_MODELS.register(
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
THREAT_MODELS.register(
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
THREAT_MODELS.register(
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

THREAT_MODELS.register(
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
THREAT_MODELS.register(
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


def create_threat_model(name: str) -> ThreatModel:
    """The registered threat model ``name``."""
    return THREAT_MODELS.create(name)
THREAT_MODELS.register(
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
