"""The attack interface: what the adversary observes and knows -> what it recovers.

An attack receives an :class:`AttackView`, built by the harness from the simulation's
transcript through the threat model, and never the ground truth. Scoring happens outside
the attack (:mod:`audit.scoring`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from audit.registry import Registry
from audit.threat_model import Knowledge, ThreatModel
from audit.updates import LocalTraining, ModelUpdate


@dataclass(frozen=True)
class AttackView:
    """Exactly what the threat model lets the adversary see and know for one target."""

    threat_model: ThreatModel
    model: nn.Module  # the architecture, loaded with the broadcast weights
    target: ModelUpdate  # the observed update (a client's observation or the aggregate)
    local_training: LocalTraining
    batch_size: int  # number of examples behind the target
    input_shape: tuple[int, int, int]
    num_classes: int
    defense_params: dict[str, Any] = field(default_factory=dict)
    labels: torch.Tensor | None = None  # only when the threat model knows the labels

    def __post_init__(self) -> None:
        if self.labels is not None and not self.threat_model.knows_(Knowledge.LABELS):
            raise ValueError("labels given to an adversary that does not know them")


@dataclass(frozen=True)
class AttackResult:
    """What an attack recovered: images (B, C, H, W) in [0, 1], labels (B,), or both."""

    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    stats: dict[str, float] = field(default_factory=dict)


class Attack(ABC):
    """An attack on what a threat model observes."""

    name: ClassVar[str]
    family: ClassVar[str]  # "gradient-inversion" | "label-recovery" | later families

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Parameters, JSON-ready, for the report."""

    @abstractmethod
    def run(
        self,
        view: AttackView,
        *,
        generator: torch.Generator,
        device: torch.device,
        progress: bool = False,
    ) -> AttackResult:
        """Attack one target."""


ATTACKS: Registry[Attack] = Registry("attack")
