"""DP-FedAvg: client-level differential privacy by clipping and Gaussian noise.

Wraps an inner FedAvg/FedSGD (as Flower's DP strategies wrap a strategy):

* ``mode="local"``: every client clips its update to L2 norm ``clip_norm`` (C) and adds
  ``N(0, (z C)^2)`` before sending; the claim holds against the server itself.
* ``mode="central"`` (McMahan et al. 2018, "Learning differentially private recurrent
  language models"): clients send clipped updates, the trusted server adds
  ``N(0, (z C)^2)`` to their sum and divides by the expected number of clients; the claim
  holds against anyone who sees aggregates.

The claim comes from :mod:`audit.privacy.accounting.accountants` (dp_accounting), never from local arithmetic.

Choices (the papers leave them open or the simulation forces them):

* Unit of privacy: one client's whole local data. Local mode uses the replace-one
  relation (the server sees every release, so a neighbour is the same client with other
  data: sensitivity 2C, accounted by the PLD accountant); central mode uses add-or-remove
  one client (sensitivity C).
* Local mode composes over all ``rounds`` (a client may be sampled every round, and the
  server knows who was sampled, so no amplification). Central mode uses Poisson
  subsampling at rate clients_per_round/num_clients, while the simulation samples a fixed
  number of clients uniformly: the usual approximation, stated in the claim.
* ``target_epsilon`` instead of ``noise_multiplier`` calibrates z to the schedule.
* ``noise_multiplier = 0`` is allowed (clipping only) and makes no DP claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from audit.privacy.accounting.accountants import (
    ACCOUNTANTS,
    GaussianEventSpec,
    Neighbouring,
    accountant_label,
    calibrate_noise_multiplier,
    epsilon,
)
from audit.core.claims import PrivacyClaim, TrustModel
from audit.core.defense import FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.core.updates import ModelUpdate, UpdateKind
from audit.core.validation import (
    check_interval,
    check_nonnegative,
    check_options,
    check_positive,
)
from defenses.fedavg import FedAvg, WrappingDefense
from defenses.gaussian_mechanism import add_gaussian_noise, clip_l2


class DPFedAvg(WrappingDefense):
    """Client-level DP-FedAvg (local or central Gaussian mechanism) around ``inner``."""

    name = "dp-fedavg"
    own_keys = ("clip_norm", "noise_multiplier", "target_epsilon", "delta", "mode", "accountant")

    def __init__(
        self,
        inner: FedAvg,
        *,
        clip_norm: float = 1.0,
        noise_multiplier: float | None = None,
        target_epsilon: float | None = None,
        delta: float = 1e-5,
        mode: str = "local",
        accountant: str = "pld",
    ) -> None:
        self.inner = inner
        self.clip_norm = check_positive("clip_norm", self.name, clip_norm)
        if (noise_multiplier is None) == (target_epsilon is None):
            raise InvalidParameterError(
                f"Exactly one of 'noise_multiplier' and 'target_epsilon' must be given to "
                f"{self.name}. Got noise_multiplier={noise_multiplier!r}, "
                f"target_epsilon={target_epsilon!r} instead."
            )
        self.noise_multiplier = (
            None
            if noise_multiplier is None
            else check_nonnegative("noise_multiplier", self.name, noise_multiplier)
        )
        self.target_epsilon = (
            None
            if target_epsilon is None
            else check_positive("target_epsilon", self.name, target_epsilon)
        )
        self.delta = check_interval("delta", self.name, delta, low=0, high=1, closed="neither")
        self.mode = check_options("mode", self.name, mode, ("local", "central"))
        self.accountant = check_options("accountant", self.name, accountant, ACCOUNTANTS.names())
        if self.mode == "local" and self.accountant != "pld":
            raise InvalidParameterError(
                f"The 'accountant' parameter of {self.name} must be 'pld' in local mode "
                f"(replace-one claims, which the other accountants do not support). "
                f"Got {accountant!r} instead."
            )
        self.default_threat_model = "hbc-server" if self.mode == "local" else "aggregate-observer"
        self._expected_clients: int | None = None

    def params(self) -> dict[str, Any]:
        return {
            **self.inner_params(),
            "clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
            "target_epsilon": self.target_epsilon,
            "delta": self.delta,
            "mode": self.mode,
            "accountant": self.accountant,
        }

    def _spec(self, schedule: FederationSchedule, z: float) -> GaussianEventSpec:
        if self.mode == "local":
            return GaussianEventSpec(z, schedule.rounds, 1.0, Neighbouring.REPLACE)
        return GaussianEventSpec(z, schedule.rounds, schedule.sample_rate, Neighbouring.ADD_OR_REMOVE)

    def event_spec(self, schedule: FederationSchedule) -> GaussianEventSpec:
        """The accounted mechanism for ``schedule`` (after :meth:`prepare`)."""
        if self.noise_multiplier is None:
            self.prepare(schedule)
        return self._spec(schedule, float(self.noise_multiplier))

    def prepare(self, schedule: FederationSchedule) -> None:
        """Calibrate the noise multiplier to ``target_epsilon`` for ``schedule``."""
        self._expected_clients = schedule.clients_per_round
        if self.target_epsilon is not None:
            self.noise_multiplier = calibrate_noise_multiplier(
                self._spec(schedule, 1.0),
                target_epsilon=self.target_epsilon,
                delta=self.delta,
                accountant=self.accountant,
            )

    def _noise_std(self) -> float:
        if self.noise_multiplier is None:
            raise RuntimeError("call prepare(schedule) before running a target_epsilon defense")
        return self.noise_multiplier * self.clip_norm

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        update = self.inner.client_side(update, generator=generator)
        clipped, norm = clip_l2(update.tensors, self.clip_norm)
        if self.mode == "local":
            clipped = add_gaussian_noise(clipped, self._noise_std(), generator=generator)
        return update.with_tensors(clipped, norm_before_clipping=norm)

    def server_side(
        self, observations: Sequence[ModelUpdate], *, generator: torch.Generator
    ) -> ModelUpdate:
        if self.mode == "local":
            return self.inner.server_side(observations, generator=generator)
        names = list(observations[0].tensors)
        total = {n: sum(o.tensors[n] for o in observations) for n in names}
        noised = add_gaussian_noise(total, self._noise_std(), generator=generator)
        denom = self._expected_clients or len(observations)
        return ModelUpdate(
            kind=observations[0].kind,
            tensors={n: t / denom for n, t in noised.items()},
            round=observations[0].round,
            num_examples=sum(o.num_examples for o in observations),
        )

    def accounting_facts(self, schedule: FederationSchedule) -> dict[str, Any]:
        """The lint's facts: the accountant's sampling (Poisson at ``m / N`` in central mode,
        none in local mode) beside the simulation's (``m`` of ``N`` clients drawn without
        replacement each round, or Poisson at ``m / N`` with the schedule's ``sampling``), the rounds it composes, the noise as configured, the
        divisor of the mean and the order of clip and noise."""
        if self.noise_multiplier is None:
            self.prepare(schedule)
        spec = self._spec(schedule, float(self.noise_multiplier))
        every = schedule.clients_per_round == schedule.num_clients
        local = self.mode == "local"
        return {
            "sampling_assumed": "poisson" if spec.sample_rate < 1.0 else "none",
            "sample_rate_assumed": spec.sample_rate,
            "sampling_used": "all" if every else (
                "poisson" if schedule.sampling == "poisson" else "without-replacement"),
            "sample_rate_used": schedule.sample_rate,
            "steps_accounted": spec.compositions, "unit_released": "client",
            "adjacency_accounted": spec.adjacency, "noise_multiplier": spec.noise_multiplier,
            "effective_noise_multiplier": float(self.noise_multiplier),
            "noise_source": "configured: noise std z C on each clipped update" if local else
                            "configured: noise std z C on the sum of clipped updates (sensitivity C)",
            **({} if local else {"mean_divisor_expected": float(schedule.clients_per_round),
                                 "mean_divisors_used": (float(self._expected_clients or schedule.clients_per_round),)}),
            "operations": ("clip", "noise", "aggregate") if local else ("clip", "aggregate", "noise"),
        }

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        if self.noise_multiplier is None:
            self.prepare(schedule)
        z = float(self.noise_multiplier)
        if z == 0.0:
            return PrivacyClaim.none(
                f"{self.name} with noise multiplier 0 clips updates but adds no noise: "
                "no differential-privacy claim."
            )
        spec = self._spec(schedule, z)
        eps = epsilon(spec, delta=self.delta, accountant=self.accountant)
        if self.mode == "local":
            unit = "one client's local data (replace-one, L2 sensitivity 2C per release)"
            trust = TrustModel.LOCAL
            statement = (
                f"({eps:.4g}, {self.delta:g})-DP for {unit}, against the server and any "
                f"observer of client updates, over {schedule.rounds} round(s)."
            )
        else:
            unit = "one client (add-or-remove, L2 sensitivity C of the sum)"
            trust = TrustModel.CENTRAL
            statement = (
                f"({eps:.4g}, {self.delta:g})-DP for {unit}, against observers of the "
                f"aggregates (the server is trusted), over {schedule.rounds} round(s); "
                "Poisson sampling assumed by the accountant, fixed-size sampling simulated."
            )
        return PrivacyClaim(
            has_dp=True,
            statement=statement,
            epsilon=eps,
            delta=self.delta,
            unit=unit,
            trust_model=trust,
            compositions=schedule.rounds,
            accountant=accountant_label(self.accountant),
            mechanism=spec.describe(),
            unit_level="client",
            adjacency=spec.adjacency,
            assumptions=spec.assumptions("client") + (
                ("the server is trusted: it sees each clipped update before the noise",)
                if self.mode != "local" else
                ("each client noises its own clipped update: nothing of the server is trusted",)),
        )


__all__ = ["DPFedAvg", "UpdateKind"]
