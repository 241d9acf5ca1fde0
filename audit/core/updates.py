"""Model updates: what a client computes and what leaves it (the *observation*).

A :class:`ModelUpdate` maps parameter names to tensors. Its :class:`UpdateKind` says how to
read them: ``GRADIENT`` (FedSGD: dL/dtheta of one local batch) or ``MODEL_DELTA``
(FedAvg: ``theta_broadcast - theta_after_local_training``, so both point "uphill" and the
server applies ``theta - server_lr * update``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

import torch

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_positive


class UpdateKind(str, Enum):
    """How the tensors of an update are to be read."""

    GRADIENT = "gradient"
    MODEL_DELTA = "model-delta"


@dataclass(frozen=True)
class LocalTraining:
    """A client's local schedule: ``steps`` full-batch SGD steps at learning rate ``lr``.

    With ``steps == 1`` and ``kind == GRADIENT`` this is FedSGD; otherwise FedAvg's E local
    steps, reported as a model delta.
    """

    steps: int = 1
    lr: float = 0.1
    kind: UpdateKind = UpdateKind.GRADIENT
    #: cross-entropy class weights of the task's loss (e.g. rare tampered pixels weigh
    #: more), part of the public training procedure; None: unweighted
    class_weights: tuple[float, ...] | None = None
    #: heavy-ball momentum of the local SGD (``torch.optim.SGD``'s rule: ``v <- mu v + g``,
    #: ``theta <- theta - lr v``), its buffer reset at every round (DEeR's code builds a new
    #: optimizer per phase); 0: plain SGD
    momentum: float = 0.0

    def __post_init__(self) -> None:
        check_interval("local_steps", "LocalTraining", self.steps, kind=int, low=1)
        check_interval("momentum", "LocalTraining", self.momentum, low=0, high=1, closed="left")
        if self.kind is UpdateKind.GRADIENT and self.steps != 1:
            raise InvalidParameterError(
                "A gradient update is one local step; use kind=model-delta for "
                f"local_steps > 1. Got local_steps={self.steps!r} instead."
            )
        check_positive("lr", "LocalTraining", self.lr)
        if self.class_weights is not None:
            for w in self.class_weights:
                check_positive("class_weights", "LocalTraining", w)

    def loss_weight(self, device) -> torch.Tensor | None:
        """The class weights as a tensor on ``device`` (None when unweighted)."""
        if self.class_weights is None:
            return None
        return torch.tensor(self.class_weights, dtype=torch.float32, device=device)


@dataclass(frozen=True)
class ClientData:
    """One client's local examples: inputs, labels (class indices, or per-pixel class
    indices for segmentation) and, when the data has them, privacy-sensitive-region masks
    (N, H, W) bool."""

    images: torch.Tensor
    labels: torch.Tensor
    psi_masks: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "ClientData":
        """The same examples on ``device``."""
        return ClientData(self.images.to(device), self.labels.to(device),
                          None if self.psi_masks is None else self.psi_masks.to(device))

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class ModelUpdate:
    """One update: a client's raw update, its observation, or the server's aggregate."""

    kind: UpdateKind
    tensors: Mapping[str, torch.Tensor]
    client_id: int = -1  # -1 for an aggregate
    round: int = 0
    num_examples: int = 0
    info: Mapping[str, float] = field(default_factory=dict)

    def with_tensors(self, tensors: Mapping[str, torch.Tensor], **info: float) -> "ModelUpdate":
        """A copy with new tensors and extra ``info`` entries."""
        return replace(self, tensors=dict(tensors), info={**self.info, **info})

    def flat(self) -> torch.Tensor:
        """All tensors concatenated into one vector (in name order of the mapping)."""
        return torch.cat([t.reshape(-1) for t in self.tensors.values()])

    def l2_norm(self) -> float:
        """Global L2 norm over all tensors."""
        return float(torch.linalg.vector_norm(self.flat()))


def average(updates: Sequence[ModelUpdate], *, weights: Sequence[float] | None = None) -> dict:
    """Weighted mean of the updates' tensors (uniform when ``weights`` is None)."""
    if not updates:
        raise InvalidParameterError("Cannot aggregate an empty list of updates.")
    w = torch.tensor(
        [1.0] * len(updates) if weights is None else list(weights), dtype=torch.float64
    )
    w = w / w.sum()
    names = list(updates[0].tensors)
    return {
        n: sum(float(wi) * u.tensors[n] for wi, u in zip(w, updates, strict=True)) for n in names
    }
