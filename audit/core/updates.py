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

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval, check_options, check_positive, check_table_keys


class UpdateKind(str, Enum):
    """How the tensors of an update are to be read."""

    GRADIENT = "gradient"
    MODEL_DELTA = "model-delta"


#: the keys a user may set to describe their clients' local training (``--local-training
#: KEY=VALUE``, a config file's ``local_training`` table); see :class:`LocalTraining`
LOCAL_TRAINING_KEYS = ("lr", "epochs", "batch_size", "shuffle", "optimizer", "momentum", "weight_decay",
                       "betas", "eps", "loss", "model_mode", "dropout")
OPTIMIZERS = ("sgd", "adam")
MODEL_MODES = ("train", "eval")
CROSS_ENTROPY = "cross-entropy"


@dataclass(frozen=True)
class LocalTraining:
    """A client's local training, as the simulation runs it and every attack re-simulates it.

    By default ``steps`` full-batch SGD steps at learning rate ``lr`` (with ``steps == 1``
    and ``kind == GRADIENT`` this is FedSGD; otherwise FedAvg's E local steps, reported as a
    model delta). With ``batch_size``, ``epochs`` passes over the local data in minibatches
    instead (the order drawn per client and round, see :mod:`audit.fl.local_steps`).

    Choices of this project: the optimizers follow ``torch.optim.SGD`` and
    ``torch.optim.Adam`` (coupled L2 ``weight_decay`` added to the gradient, as both do), their
    state reset at every round (a client builds its optimizer per round); ``model_mode``
    is the module mode during the local step (``train``: BatchNorm normalises by the batch's
    statistics, dropout active; ``eval``: BatchNorm uses its running statistics, dropout
    off), ``dropout`` overrides the dropout part of it.
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
    #: passes over the local data when ``batch_size`` is set (otherwise ``steps`` counts)
    epochs: int = 1
    #: minibatch size; None: full batch (each step sees all local data)
    batch_size: int | None = None
    #: minibatch order drawn afresh each epoch (seeded by client and round); False: data order
    shuffle: bool = True
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    #: Adam's (beta1, beta2) and epsilon
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    #: "cross-entropy" or the user's ``module:function`` / ``file.py:function`` (logits,
    #: labels) -> scalar loss
    loss: str = CROSS_ENTROPY
    model_mode: str = "train"
    #: dropout active during the local step; None: as ``model_mode`` (on in train mode)
    dropout: bool | None = None

    def __post_init__(self) -> None:
        owner = "LocalTraining"
        check_interval("local_steps", owner, self.steps, kind=int, low=1)
        check_interval("momentum", owner, self.momentum, low=0, high=1, closed="left")
        check_interval("epochs", owner, self.epochs, kind=int, low=1)
        if self.batch_size is not None:
            check_interval("batch_size", owner, self.batch_size, kind=int, low=1)
        check_options("optimizer", owner, self.optimizer, OPTIMIZERS)
        check_options("model_mode", owner, self.model_mode, MODEL_MODES)
        check_interval("weight_decay", owner, self.weight_decay, low=0)
        check_positive("eps", owner, self.eps)
        if (not isinstance(self.betas, tuple) or len(self.betas) != 2
                or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas)):
            raise invalid("betas", owner, "two numbers in [0, 1) (Adam's beta1, beta2)", self.betas)
        for name in ("shuffle",) + (("dropout",) if self.dropout is not None else ()):
            if not isinstance(getattr(self, name), bool):
                raise invalid(name, owner, "true or false", getattr(self, name))
        if not isinstance(self.loss, str) or not self.loss:
            raise invalid("loss", owner, f"{CROSS_ENTROPY!r} or 'module:function'", self.loss)
        if self.kind is UpdateKind.GRADIENT and (self.steps != 1 or self.epochs != 1 or self.batch_size is not None):
            raise InvalidParameterError(
                "A gradient update is one local step on the whole local batch; use a model-delta "
                "defense (e.g. fedavg) for local_steps > 1, epochs > 1 or minibatches. Got "
                f"local_steps={self.steps!r}, epochs={self.epochs!r}, batch_size={self.batch_size!r} instead."
            )
        if self.optimizer != "sgd" and self.momentum:
            raise invalid("momentum", owner, "0 with optimizer 'adam' (Adam has betas)", self.momentum)
        check_positive("lr", owner, self.lr)
        if self.class_weights is not None:
            for w in self.class_weights:
                check_positive("class_weights", owner, w)

    def loss_weight(self, device) -> torch.Tensor | None:
        """The class weights as a tensor on ``device`` (None when unweighted)."""
        if self.class_weights is None:
            return None
        return torch.tensor(self.class_weights, dtype=torch.float32, device=device)

    def with_overrides(self, overrides: Mapping[str, object], *, source: str = "local_training") -> "LocalTraining":
        """A copy with the user's description applied (keys of :data:`LOCAL_TRAINING_KEYS`;
        an unknown key is an error naming it and ``source``)."""
        check_table_keys(dict(overrides), LOCAL_TRAINING_KEYS, source)
        values = dict(overrides)
        if "betas" in values and isinstance(values["betas"], (list, str)):
            parts = values["betas"].split(",") if isinstance(values["betas"], str) else values["betas"]
            try:
                values["betas"] = tuple(float(b) for b in parts)
            except (TypeError, ValueError):
                raise invalid("betas", source, "two numbers 'beta1,beta2'", overrides["betas"]) from None
        return replace(self, **values)

    def describe(self) -> dict[str, object]:
        """The description a report states (JSON-ready)."""
        out: dict[str, object] = {"kind": self.kind.value, "lr": self.lr, "optimizer": self.optimizer,
                                  "model_mode": self.model_mode,
                                  "dropout": self.model_mode == "train" if self.dropout is None else self.dropout,
                                  "loss": self.loss}
        if self.batch_size is None:
            out.update(steps=self.steps, batch="full")
        else:
            out.update(epochs=self.epochs, batch_size=self.batch_size, shuffle=self.shuffle)
        if self.optimizer == "sgd":
            out["momentum"] = self.momentum
        else:
            out.update(betas=list(self.betas), eps=self.eps)
        out["weight_decay"] = self.weight_decay
        if self.class_weights is not None:
            out["class_weights"] = list(self.class_weights)
        return out


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
