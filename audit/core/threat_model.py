"""Threat models as data: who the adversary is, what it observes, what it knows.

An attack is handed an :class:`~audit.core.attack.AttackView` built by :func:`build_view` from a
simulation transcript, and the view contains exactly what the threat model lets the
adversary observe (see ``../shared/specs/attacks.md``). Knowledge items gate optional
side information (e.g. the true labels) so an attack cannot read what its adversary does
not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from audit.core.registry import Registry


class Adversary(str, Enum):
    """Who attacks."""

    SERVER = "honest-but-curious server"
    MALICIOUS_SERVER = "malicious server (it may modify the model it broadcasts)"
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


THREAT_MODELS: Registry[ThreatModel] = Registry("threat model", group="fedaudit.threat_models", kind=ThreatModel)


def create_threat_model(name: str) -> ThreatModel:
    """The registered threat model ``name``."""
    return THREAT_MODELS.create(name)
