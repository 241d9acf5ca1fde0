"""Undefended baselines: FedSGD and FedAvg (McMahan et al. 2017).

FedSGD: each client sends the gradient of one local batch. FedAvg: each client runs E
local SGD steps and sends its model delta. The server averages, weighted by the number of
examples. Neither makes a DP claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from audit.core.claims import PrivacyClaim
from audit.core.defense import Defense, FederationSchedule
from audit.core.updates import LocalTraining, ModelUpdate, UpdateKind, average
from audit.core.validation import check_interval, check_known_keys, check_positive


class FedAvg(Defense):
    """Federated averaging with E local steps (E=1 and gradients: FedSGD)."""

    name = "fedavg"

    def __init__(self, *, local_steps: int = 2, lr: float = 0.1, kind: UpdateKind | None = None,
                 momentum: float = 0.0):
        local_steps = check_interval("local_steps", self.name, local_steps, kind=int, low=1)
        lr = check_positive("lr", self.name, lr)
        momentum = check_interval("momentum", self.name, momentum, low=0, high=1, closed="left")
        kind = kind or (UpdateKind.MODEL_DELTA)
        self._training = LocalTraining(steps=local_steps, lr=lr, kind=kind, momentum=momentum)

    @classmethod
    def from_params(cls, **params: Any) -> "FedAvg":
        """Build from user parameters (``local_steps``, ``lr``, ``momentum``)."""
        check_known_keys(params, ("local_steps", "lr", "momentum"), cls.name)
        return cls(**params)

    @property
    def local_training(self) -> LocalTraining:
        return self._training

    def params(self) -> dict[str, Any]:
        out = {"local_steps": self._training.steps, "lr": self._training.lr}
        if self._training.momentum:
            out["momentum"] = self._training.momentum
        return out

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        return update

    def server_side(
        self, observations: Sequence[ModelUpdate], *, generator: torch.Generator
    ) -> ModelUpdate:
        weights = [max(o.num_examples, 1) for o in observations]
        return ModelUpdate(
            kind=observations[0].kind,
            tensors=average(observations, weights=weights),
            round=observations[0].round,
            num_examples=sum(o.num_examples for o in observations),
        )

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        return PrivacyClaim.none(
            f"{self.name} makes no differential-privacy claim: updates leave clients unprotected."
        )


class FedSGD(FedAvg):
    """Federated SGD: one local gradient per client and round, averaged by the server."""

    name = "fedsgd"

    def __init__(self, *, lr: float = 0.1):
        super().__init__(local_steps=1, lr=lr, kind=UpdateKind.GRADIENT)

    @classmethod
    def from_params(cls, **params: Any) -> "FedSGD":
        """Build from user parameters (``lr``)."""
        check_known_keys(params, ("lr",), cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {"lr": self._training.lr}


INNER_KEYS = ("base", "local_steps", "lr", "momentum")


def inner_from_params(params: dict[str, Any], owner: str) -> FedAvg:
    """The inner FedSGD/FedAvg of a wrapping defense, popping ``base`` (fedsgd, the
    default, or fedavg), ``local_steps``, ``lr`` and ``momentum`` from ``params``."""
    from audit.core.errors import InvalidParameterError
    from audit.core.validation import check_options

    base = check_options("base", owner, params.pop("base", "fedsgd"), ("fedsgd", "fedavg"))
    inner_params = {k: params.pop(k) for k in ("local_steps", "lr", "momentum") if k in params}
    if base == "fedsgd":
        for key in ("local_steps", "momentum"):
            if key in inner_params:
                raise InvalidParameterError(
                    f"The '{key}' parameter of {owner} needs base='fedavg'. "
                    f"Got {key}={inner_params[key]!r} with base='fedsgd' instead."
                )
        return FedSGD(**inner_params)
    return FedAvg(**inner_params)


class WrappingDefense(Defense):
    """A defense around an inner FedSGD/FedAvg (as Flower's DP strategies wrap a strategy):
    user parameters are ``base``, ``local_steps``, ``lr`` for the inner defense plus the
    subclass's ``own_keys``."""

    own_keys: ClassVar[tuple[str, ...]] = ()
    inner: FedAvg

    @classmethod
    def from_params(cls, **params: Any):
        """Build from user parameters; ``base`` is fedsgd (default) or fedavg."""
        check_known_keys(params, INNER_KEYS + cls.own_keys, cls.name)
        params = dict(params)
        inner = inner_from_params(params, cls.name)
        return cls(inner, **params)

    @property
    def local_training(self) -> LocalTraining:
        return self.inner.local_training

    def inner_params(self) -> dict[str, Any]:
        """The inner defense's parameters, for :meth:`params`."""
        return {"base": self.inner.name, **self.inner.params()}
