"""The defense interface: client side (update -> observation) and server side
(observations -> aggregate), plus the privacy claim it makes.

Like Flower's strategies, a defense may wrap an inner one (``DPFedAvg(FedAvg(...))``): the
wrapper calls the inner defense's sides and adds its own mechanism around them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from audit.core.claims import PrivacyClaim
from audit.core.registry import Registry
from audit.core.updates import ClientData, LocalTraining, ModelUpdate
from audit.core.config import CLIENT_SAMPLINGS  # the ways a round's clients are drawn
from audit.core.validation import check_interval, check_known_keys, check_options


@dataclass(frozen=True)
class FederationSchedule:
    """How many clients exist, how many are sampled per round and how, for how many rounds."""

    num_clients: int
    clients_per_round: int
    rounds: int
    #: local examples of each client, when known (an accountant that reasons per example,
    #: like DEeR's official one, needs them)
    examples_per_client: tuple[int, ...] | None = None
    #: how a round's clients are drawn (:data:`CLIENT_SAMPLINGS`): "fixed", exactly
    #: ``clients_per_round`` without replacement, or "poisson", each client independently at
    #: rate ``clients_per_round / num_clients`` (what amplification-by-sampling accountants assume)
    sampling: str = "fixed"

    def __post_init__(self) -> None:
        check_interval("num_clients", "FederationSchedule", self.num_clients, kind=int, low=1)
        check_interval(
            "clients_per_round",
            "FederationSchedule",
            self.clients_per_round,
            kind=int,
            low=1,
            high=self.num_clients,
        )
        check_interval("rounds", "FederationSchedule", self.rounds, kind=int, low=1)
        check_options("sampling", "FederationSchedule", self.sampling, CLIENT_SAMPLINGS)
        if self.examples_per_client is not None:
            if len(self.examples_per_client) != self.num_clients:
                raise ValueError(
                    f"examples_per_client has {len(self.examples_per_client)} entries for "
                    f"{self.num_clients} clients")
            for n in self.examples_per_client:
                check_interval("examples_per_client", "FederationSchedule", n, kind=int, low=1)

    @property
    def sample_rate(self) -> float:
        """Fraction of clients taking part in a round."""
        return self.clients_per_round / self.num_clients


class Defense(ABC):
    """A federated-learning defense (or an undefended baseline)."""

    name: ClassVar[str]
    #: the threat model whose adversary the claim is about (the audit's default)
    default_threat_model: ClassVar[str] = "hbc-server"

    @property
    @abstractmethod
    def local_training(self) -> LocalTraining:
        """How clients compute their raw update."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Public parameters, JSON-ready, for the report."""

    def public_state(self) -> dict[str, Any]:
        """Everything public about the defense that an adversary may use: :meth:`params`
        plus non-scalar state fixed during the run (e.g. per-layer noise scales). Attack
        views get this; the report gets :meth:`params`."""
        return self.params()

    def server_state(self) -> dict[str, Any]:
        """What only the server holds (e.g. DR-Encoder's decoder): given to an adversary that
        is the server (threat models knowing ``SERVER_STATE``). Default: nothing."""
        return {}

    def first_update_round(self) -> int:
        """The first round whose observations carry the clients' model updates (the round
        the harness attacks; DR-Encoder's statistics rounds come before). Default: 0."""
        return 0

    @abstractmethod
    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        """Turn a client's raw update into what leaves the client."""

    @abstractmethod
    def server_side(
        self, observations: Sequence[ModelUpdate], *, generator: torch.Generator
    ) -> ModelUpdate:
        """Aggregate the observations of one round into the update the server applies."""

    def prepare(self, schedule: FederationSchedule) -> None:
        """Fix schedule-dependent settings (e.g. calibrate noise to a target epsilon)."""

    #: examples of the training data the server holds as a public split (0: none); the
    #: harness carves them out of the data and passes them to :meth:`setup_server`
    public_examples: int = 0

    def setup_server(self, *, model: nn.Module, public: ClientData | None,
                     training: LocalTraining | None = None) -> None:
        """Called once before the first round with the global model (live: it holds the
        broadcast weights whenever :meth:`server_side` runs; never modify it), the public
        split and the clients' local training (with the task's loss weights). Default:
        nothing."""

    def setup_client(self, *, client_id: int, model: nn.Module, data: ClientData,
                     round: int) -> None:
        """Client-side preparation on the client's own data before its local update in
        ``round`` (``model`` holds the broadcast weights; never modify it). Default:
        nothing."""

    def client_model(self, model: nn.Module, *, client_id: int, round: int) -> tuple[nn.Module, Any] | None:
        """The model client ``client_id`` receives and trains in ``round``, and what it
        received as the transcript records it (e.g. FedQSN's masked, quantized proxy and a
        :class:`defenses.proxy_model.ShippedProxy`); ``model`` holds the broadcast weights
        (never modify it). The client's update is taken against the returned model. Default:
        None, the broadcast model itself."""
        return None

    def trainable(self, round: int) -> Collection[str] | None:
        """Names of the parameters clients train in ``round`` (e.g. DEeR alternates the LoRA
        factors); None: every parameter with ``requires_grad``. Only what clients train
        leaves them. Default: None."""
        return None

    @abstractmethod
    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        """The privacy claim for a run with ``schedule``."""

    def accounting_facts(self, schedule: FederationSchedule) -> dict[str, Any]:
        """What this defense's accounting assumes and what its mechanism does, for the
        accounting lint: keyword arguments of :class:`audit.privacy.lint.RunFacts` (e.g.
        ``sampling_assumed``, ``steps_accounted``, ``unit_released``, ``operations``); an
        unknown key is an error naming it. Default: nothing beyond the claim
        (:mod:`audit.privacy.auditing.defense_lint` reads its delta, unit level and
        adjacency, and the run's rounds and population)."""
        return {}


class KeyedDefense(Defense):
    """A defense built from the keyword arguments of its constructor, all listed in ``keys``
    (an unknown one is an error naming it), whose clients run ``self._training``."""

    keys: ClassVar[tuple[str, ...]] = ()
    _training: LocalTraining

    @classmethod
    def delta_training(cls, local_steps: Any, lr: Any, momentum: Any) -> LocalTraining:
        """Clients' local SGD returning a model delta, its parameters checked by name."""
        from audit.core.updates import UpdateKind
        from audit.core.validation import check_positive

        return LocalTraining(
            steps=check_interval("local_steps", cls.name, local_steps, kind=int, low=1),
            lr=check_positive("lr", cls.name, lr), kind=UpdateKind.MODEL_DELTA,
            momentum=check_interval("momentum", cls.name, momentum, low=0, high=1, closed="left"))

    @classmethod
    def from_params(cls, **params: Any) -> "KeyedDefense":
        """Build from user parameters."""
        check_known_keys(params, cls.keys, cls.name)
        return cls(**params)

    @property
    def local_training(self) -> LocalTraining:
        return self._training


DEFENSES: Registry[Defense] = Registry("defense", group="fedaudit.defenses", kind=Defense)
