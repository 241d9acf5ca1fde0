"""signSGD with majority vote (Bernstein, Wang, Azizzadenesheli, Anandkumar 2018,
"signSGD: compressed optimisation for non-convex problems", ICML; its distributed
variant by majority vote), a compression baseline used as a defense.

Each client sends only the sign of each entry of its update; the server takes the
majority vote, the sign of the sum of the clients' signs, and broadcasts it; everyone moves
by a fixed step along it::

    observation_k = sign(g_k),   aggregate = scale * sign(sum_k sign(g_k)).

The simulation applies ``theta <- theta - lr * aggregate`` to a gradient (FedSGD, the
paper's setting: one stochastic gradient per client and round) and
``theta <- theta - aggregate`` to a model delta, so each coordinate moves by
``lr * scale`` (FedSGD) or ``scale`` (FedAvg) per round, or stays where the vote ties.

Choices of this project, where the paper leaves room:

* ``scale`` (default 0.1) is the server's step multiplier of the vote (the paper's
  learning rate divided by the clients' ``lr``): the sign discards the update's
  magnitude, so the step must be set; it is public.
* ``base="fedavg"`` (``local_steps``) signs the client's model delta after its local steps
  instead of one gradient (a sign-compressed FedAvg; the paper analyses gradients only).
* One vote per client, unweighted by its number of examples, as in the paper.
* ``sign(0) = 0``: an entry that is exactly zero (the gradient of a dead ReLU unit's
  weights) is sent as 0 and a tied vote moves nothing; a strict one-bit wire format would
  have to send it as +1 or -1.
* No momentum (the paper's Signum) and no error feedback: clients and server are stateless.
* No differential-privacy claim: the sign pattern is a deterministic function of the
  client's data; the claim says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from audit.core.claims import PrivacyClaim
from audit.core.defense import FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.core.updates import ModelUpdate
from audit.core.validation import check_positive
from defenses.fedavg import FedAvg, WrappingDefense


def signs(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each entry's sign (-1, 0, +1), in the tensor's dtype."""
    return {name: torch.sign(t) for name, t in tensors.items()}


def majority_vote(observations: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The sign of the sum of the observations, entry by entry (0 where the vote ties)."""
    names = list(observations[0])
    return {n: torch.sign(sum(o[n] for o in observations)) for n in names}


class SignSGD(WrappingDefense):
    """signSGD with majority vote around an inner FedSGD/FedAvg: clients send signs, the
    server broadcasts ``scale`` times the sign of their sum."""

    name: ClassVar[str] = "signsgd"
    own_keys: ClassVar[tuple[str, ...]] = ("scale",)

    def __init__(self, inner: FedAvg, *, scale: float = 0.1) -> None:
        self.inner = inner
        self.scale = check_positive("scale", self.name, scale)

    def params(self) -> dict[str, Any]:
        return {**self.inner_params(), "scale": self.scale}

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        update = self.inner.client_side(update, generator=generator)
        return update.with_tensors(signs(update.tensors))

    def server_side(self, observations: Sequence[ModelUpdate], *,
                    generator: torch.Generator) -> ModelUpdate:
        if not observations:
            raise InvalidParameterError("Cannot aggregate an empty list of updates.")
        vote = majority_vote([o.tensors for o in observations])
        return ModelUpdate(
            kind=observations[0].kind,
            tensors={n: self.scale * v for n, v in vote.items()},
            round=observations[0].round,
            num_examples=sum(o.num_examples for o in observations),
        )

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        return PrivacyClaim.none(
            f"{self.name} makes no differential-privacy claim: each client sends the sign "
            "pattern of its update, a deterministic function of its data.")


__all__ = ["SignSGD", "majority_vote", "signs"]
