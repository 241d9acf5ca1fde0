"""The attack interface: what the adversary observes and knows -> what it recovers.

An attack receives a view built by the harness through the threat model, and never the
ground truth: an :class:`AttackView` (one observed update; reconstruction attacks) or a
:class:`MembershipView` (a trained model or an observed update plus candidate examples
whose membership is hidden; membership inference). Scoring happens outside the attack
(:mod:`audit.metrics.scoring`, :mod:`audit.metrics.membership`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from audit.core.registry import Registry
from audit.core.threat_model import Knowledge, ThreatModel
from audit.core.updates import LocalTraining, ModelUpdate


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
    #: the defense's server-private state (e.g. DR-Encoder's decoder), only for an adversary
    #: that is the server (:class:`~audit.core.threat_model.Knowledge` ``SERVER_STATE``)
    server_state: dict[str, Any] | None = None
    #: population data from the same distribution, disjoint from every client's (the items
    #: no client holds), only for an adversary that holds it (``POPULATION_DATA``): e.g. to
    #: train an image prior
    public: "LabelledData | None" = None

    def __post_init__(self) -> None:
        if self.labels is not None and not self.threat_model.knows_(Knowledge.LABELS):
            raise ValueError("labels given to an adversary that does not know them")
        if self.public is not None and not self.threat_model.knows_(Knowledge.POPULATION_DATA):
            raise ValueError("population data given to an adversary that does not hold it")
        if self.server_state is not None and not self.threat_model.knows_(Knowledge.SERVER_STATE):
            raise ValueError("the server's private state given to an adversary that is not the server")


@dataclass(frozen=True)
class LabelledData:
    """Inputs (N, C, H, W) with their labels (N,)."""

    inputs: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


#: trains one model per row of a boolean (K, num_candidates) mask, each on the candidates
#: its row selects, with the target's own training procedure; returns the trained models
ReferenceTrainer = Callable[[Any], list[nn.Module]]


@dataclass(frozen=True)
class MembershipView:
    """What a membership adversary gets: a model (or an observed update) and candidates.

    ``model`` is the released target model (final global model), or for an update-based
    attack the broadcast model the observed update was computed from. ``train_references``
    exists only when the threat model knows the training procedure (shadow / reference
    models); ``population`` only when it holds population data (never a candidate).
    """

    threat_model: ThreatModel
    model: nn.Module
    candidates: LabelledData
    input_shape: tuple[int, int, int]
    num_classes: int
    modality: str = "image"
    observation: ModelUpdate | None = None
    local_training: LocalTraining | None = None
    population: LabelledData | None = None
    train_references: ReferenceTrainer | None = None
    defense_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.train_references is not None and not self.threat_model.knows_(
            Knowledge.TRAINING_PROCEDURE
        ):
            raise ValueError("reference training given to an adversary that does not know it")
        if self.population is not None and not self.threat_model.knows_(Knowledge.POPULATION_DATA):
            raise ValueError("population data given to an adversary that does not hold it")


@dataclass(frozen=True)
class ExtractionView:
    """What a model-extraction adversary (a client, or a coalition of clients) gets: the
    models the server sent it (``proxies``: one :class:`defenses.proxy_model.ShippedProxy`
    per client and round it took part in, oldest first), its own data, the architecture
    (``model``: the architecture with random weights, never the global ones) and the
    defense's public parameters."""

    threat_model: ThreatModel
    model: nn.Module
    proxies: tuple[Any, ...]
    data: LabelledData
    local_training: LocalTraining
    defense_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackResult:
    """What an attack recovered: images (B, C, H, W) in [0, 1], labels (B,), or both; a
    membership attack returns ``scores`` (one per candidate, higher = more likely member).

    Text and update attacks: ``tokens`` — recovered token ids, one list per recovered
    sequence (in order for a sequence attack such as TAG; a bag-of-tokens attack returns
    one list, sorted, for the whole batch); ``gradient`` — the recovered update, named like
    the client's raw update (autoencoder reconstruction)."""

    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    tokens: list[list[int]] | None = None
    gradient: dict[str, torch.Tensor] | None = None
    #: a model-extraction attack's estimate of the global model's parameters
    model_state: dict[str, torch.Tensor] | None = None
    stats: dict[str, float] = field(default_factory=dict)


class Attack(ABC):
    """An attack on what a threat model observes."""

    name: ClassVar[str]
    family: ClassVar[str]  # "gradient-inversion" | "label-recovery" | "membership-inference" | "model-extraction" | ...
    #: the adversary the attack is built for when the audit names none (None: the defense's)
    default_threat_model: ClassVar[str | None] = None

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Parameters, JSON-ready, for the report."""

    @abstractmethod
    def run(
        self,
        view: AttackView | MembershipView | ExtractionView,
        *,
        generator: torch.Generator,
        device: torch.device,
        progress: bool = False,
    ) -> AttackResult:
        """Attack one target."""

    def run_targets(self, views: list, *, generators: list[torch.Generator], device: torch.device,
                    progress: bool = False) -> list[AttackResult]:
        """Attack several targets, ``generators[i]`` for ``views[i]``: by default one
        :meth:`run` each; an attack that can batch targets (one optimisation over many
        clients' updates) overrides it, with the same results as one by one."""
        return [self.run(v, generator=g, device=device, progress=progress)
                for v, g in zip(views, generators)]


@dataclass(frozen=True)
class CraftingContext:
    """What a malicious server knows when it crafts the model it broadcasts: the data
    domain, the clients' batch size and, when it holds one, a public split of the data
    (population data disjoint from the clients')."""

    input_shape: tuple[int, ...]
    num_classes: int
    batch_size: int
    public: LabelledData | None = None


class ModelCraftingAttack(Attack):
    """An attack by a malicious server (threat models of adversary
    :attr:`~audit.core.threat_model.Adversary.MALICIOUS_SERVER`): before the attacked round
    it replaces the broadcast model by :meth:`craft`'s, then reads the clients' updates of
    that model. Whatever the recovery needs is in the crafted model itself (its modules and
    weights), so :meth:`~Attack.run` finds it in ``view.model``."""

    default_threat_model = "malicious-server"

    @abstractmethod
    def craft(self, model: nn.Module, *, context: CraftingContext,
              generator: torch.Generator) -> nn.Module:
        """The model to broadcast instead of ``model`` (which may be modified in place and
        returned, or wrapped). Every parameter of the result is trained by the clients."""


ATTACKS: Registry[Attack] = Registry("attack", group="fedaudit.attacks", kind=Attack)
