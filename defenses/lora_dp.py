"""Differentially private federated LoRA: the machinery shared by ``deer`` and its
baselines ``fedit-lora`` and ``ffa-lora`` (DEeR, arXiv 2410.12926; official code
CUHK-AIM-Group/DEeR).

Per round, every client trains some LoRA factors (``trainable``: all A and B, B only, or
one factor per DEeR phase) for ``local_steps`` full-batch SGD steps, clips the delta of
*each* trained matrix to Frobenius norm ``C`` and adds Gaussian noise of standard deviation
``sigma C / sqrt(K)`` (``K`` clients per round), so the sum over clients carries ``sigma C``;
the server takes the unweighted mean. What the noise looks like is the subclass's
(:meth:`LoraDP.noise`).

Two claims, both through the accountant interface:

* **official** (the primary claim, what the paper's code computes and calibrates
  ``sigma`` with): sample-level DP-SGD RDP accounting (opacus RDP), sampling rate
  ``b / N`` (``b`` the per-client batch of the accounting, ``N`` all clients' examples)
  over ``T E N / b`` steps, ``T`` the method's rounds (for DEeR a round is two phases and
  the code counts one), ``E`` the local steps;
* **as run** (alternatives): the mechanism that actually runs is one Gaussian release per
  client and round (phase) of per-matrix-clipped deltas, so the unit is a client and the
  L2 sensitivity of one release is ``C`` times the square root of the sum over trained
  matrices of the squared factor by which the noise map scales it (1 for noise of the
  matrix's own shape, the peer's largest singular value for DEeR,
  :func:`defenses.lora_noise_regulator.sensitivity_factor`); composed over the rounds by
  dp_accounting's PLD. Two adversaries: observers of the aggregate (noise ``sigma C``,
  add-or-remove one client) and the server seeing each client's release (noise
  ``sigma C / sqrt(K)``, replace-one).

Choices where the code is not followed or is silent: the noise is added by each client
(the code adds the same per-client noise at the server: the aggregate is identical, but a
client's release is then protected against the server too); local training is full-batch
SGD with momentum 0.9, its buffer reset every round as the code builds a new optimizer per
phase (the code uses mini-batches of 10-42); the accounting's
batch defaults to the mean client size (what full-batch steps use); ``sigma`` comes from
the official accounting at ``target_epsilon`` unless ``noise_multiplier`` is given.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from audit.privacy.accounting.accountants import (
    GaussianEventSpec,
    Neighbouring,
    accountant_label,
    calibrate_noise_multiplier,
    composed_epsilon,
    epsilon,
)
from audit.core.claims import PrivacyClaim, TrustModel
from audit.core.defense import FederationSchedule, KeyedDefense
from audit.core.errors import InvalidParameterError
from audit.core.updates import ClientData, LocalTraining, ModelUpdate, UpdateKind, average
from audit.core.validation import (
    check_interval,
    check_noise_or_target,
    check_positive,
)

#: the official code's accountant: opacus RDP (sample-level DP-SGD)
OFFICIAL_ACCOUNTANT = "opacus-rdp"


@dataclass(frozen=True)
class ReleaseRecord:
    """One round's release geometry: the factors by which the noise map scales each
    trained matrix's sensitivity (``sigma_max`` of the peer, or 1)."""

    round: int
    factors: tuple[float, ...]

    @property
    def sensitivity_factor(self) -> float:
        """sqrt(sum of squared factors): the release's L2 sensitivity over ``C``."""
        return math.sqrt(sum(f * f for f in self.factors))


class LoraDP(KeyedDefense):
    """Per-matrix clipped, Gaussian-noised federated LoRA (subclasses: what is trained and
    how the noise is shaped)."""

    name: ClassVar[str] = "lora-dp"
    keys: ClassVar[tuple[str, ...]] = ("local_steps", "lr", "momentum", "clip_norm", "target_epsilon",
                                       "noise_multiplier", "delta", "accounting_batch_size")
    #: rounds of the method per harness round, for the official accounting (DEeR: 1/2)
    official_rounds_per_round: ClassVar[float] = 1.0

    def __init__(self, *, local_steps: int = 2, lr: float = 0.05, momentum: float = 0.9,
                 clip_norm: float = 0.2,
                 target_epsilon: float | None = 3.0, noise_multiplier: float | None = None,
                 delta: float = 1e-5, accounting_batch_size: int | None = None) -> None:
        local_steps = check_interval("local_steps", self.name, local_steps, kind=int, low=1)
        lr = check_positive("lr", self.name, lr)
        momentum = check_interval("momentum", self.name, momentum, low=0, high=1, closed="left")
        self._training = LocalTraining(steps=local_steps, lr=lr, kind=UpdateKind.MODEL_DELTA,
                                       momentum=momentum)
        self.clip_norm = check_positive("clip_norm", self.name, clip_norm)
        self.target_epsilon, self.noise_multiplier = check_noise_or_target(
            self.name, target_epsilon, noise_multiplier)
        self._fixed_sigma = noise_multiplier is not None
        self.delta = check_interval("delta", self.name, delta, low=0, high=1, closed="neither")
        self.accounting_batch_size = (
            None if accounting_batch_size is None else
            check_interval("accounting_batch_size", self.name, accounting_batch_size, kind=int,
                           low=1))
        self._schedule: FederationSchedule | None = None
        self._model: nn.Module | None = None
        self.pairs: list | None = None
        self.releases: list[ReleaseRecord] = []

    def params(self) -> dict[str, Any]:
        return {
            "local_steps": self._training.steps,
            "lr": self._training.lr,
            "momentum": self._training.momentum,
            "clip_norm": self.clip_norm,
            "target_epsilon": self.target_epsilon,
            "noise_multiplier": self.noise_multiplier,
            "delta": self.delta,
            "accounting_batch_size": self.accounting_batch_size,
        }

    # -- schedule and official calibration -----------------------------------------------

    def official_spec(self, schedule: FederationSchedule, z: float = 1.0) -> GaussianEventSpec:
        """The official code's accounting event: sample-level DP-SGD, ``q = b / N`` over
        ``T E N / b`` steps."""
        if schedule.examples_per_client is None:
            raise InvalidParameterError(
                f"Defense {self.name!r} accounts per example like the official code and needs "
                "the clients' example counts (FederationSchedule.examples_per_client). Got a "
                "schedule without them instead.")
        n_total = sum(schedule.examples_per_client)
        b = self.accounting_batch_size or max(1, round(n_total / schedule.num_clients))
        if b > n_total:
            raise InvalidParameterError(
                f"The 'accounting_batch_size' parameter of {self.name!r} must be at most the "
                f"{n_total} examples of all clients. Got {b!r} instead.")
        rounds = max(1, math.ceil(schedule.rounds * self.official_rounds_per_round))
        steps = max(1, round(rounds * self._training.steps * n_total / b))
        return GaussianEventSpec(z, steps, b / n_total, Neighbouring.ADD_OR_REMOVE)

    def prepare(self, schedule: FederationSchedule) -> None:
        """Calibrate ``sigma`` with the official accounting (unless it was given)."""
        self._schedule = schedule
        self.releases = []
        if not self._fixed_sigma:
            self.noise_multiplier = calibrate_noise_multiplier(
                self.official_spec(schedule), target_epsilon=float(self.target_epsilon),
                delta=self.delta, accountant=OFFICIAL_ACCOUNTANT)

    def setup_server(self, *, model: nn.Module, public: ClientData | None,
                     training: LocalTraining | None = None) -> None:
        from audit.models.lora import lora_pairs

        if self.noise_multiplier is None or self._schedule is None:
            raise RuntimeError("call prepare(schedule) before running the simulation")
        try:
            self.pairs = lora_pairs(model)
        except ValueError as err:
            raise InvalidParameterError(
                f"Defense {self.name!r} fine-tunes LoRA adapters: use a model with LoRA "
                f"(e.g. 'vit-lora'). {err}") from None
        self._model = model
        self._params = dict(model.named_parameters())
        self.releases = []

    def set_peer_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Read the frozen peer factors from ``weights`` (name -> tensor) from now on, e.g.
        a round's recorded broadcast when an audit replays the mechanism."""
        self._params = dict(weights)

    @property
    def schedule(self) -> FederationSchedule | None:
        """The schedule of :meth:`prepare`."""
        return self._schedule

    # -- what is trained and how it is noised ------------------------------------------

    def trained_matrices(self, round: int) -> list[tuple[str, str | None, str]]:
        """``(name, peer name or None, side)`` of every matrix clients train in ``round``;
        ``side`` is "A" or "B"."""
        raise NotImplementedError

    def trainable(self, round: int) -> Collection[str] | None:
        if self.pairs is None:
            raise RuntimeError("setup_server(...) runs before the first round")
        return [name for name, _, _ in self.trained_matrices(round)]

    def noise(self, name: str, peer: str | None, side: str, like: torch.Tensor, std: float, *,
              generator: torch.Generator) -> torch.Tensor:
        """Noise for one matrix (shape, dtype and device of ``like``). Here: of the
        matrix's own shape (FedIT, FFA-LoRA)."""
        return std * torch.randn(like.shape, generator=generator, dtype=like.dtype,
                                 device=like.device)

    def noise_factor(self, peer: str | None, side: str) -> float:
        """How the noise map scales the sensitivity of a matrix (1: isotropic noise)."""
        return 1.0

    # -- data flow ------------------------------------------------------------------------

    def _std(self) -> float:
        k = self._schedule.clients_per_round
        return float(self.noise_multiplier) * self.clip_norm / math.sqrt(k)

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        if self.pairs is None:
            raise RuntimeError("setup_server(...) runs before the first round")
        out, clipped = {}, 0
        std = self._std()
        for name, peer, side in self.trained_matrices(update.round):
            delta = update.tensors[name]
            norm = float(torch.linalg.vector_norm(delta))
            scale = min(1.0, self.clip_norm / norm) if norm > 0 else 1.0
            clipped += scale < 1.0
            out[name] = delta * scale + self.noise(name, peer, side, delta, std,
                                                   generator=generator)
        return ModelUpdate(update.kind, out, client_id=update.client_id, round=update.round,
                           num_examples=update.num_examples,
                           info={**update.info, "matrices_clipped": float(clipped)})

    def server_side(self, observations: Sequence[ModelUpdate], *,
                    generator: torch.Generator) -> ModelUpdate:
        r = observations[0].round
        if self.pairs is not None and not any(rec.round == r for rec in self.releases):
            self.releases.append(ReleaseRecord(r, tuple(
                self.noise_factor(peer, side) for _, peer, side in self.trained_matrices(r))))
        return ModelUpdate(observations[0].kind, average(observations), round=r,
                           num_examples=sum(o.num_examples for o in observations))

    # -- claims ---------------------------------------------------------------------------

    def accounting_facts(self, schedule: FederationSchedule) -> dict[str, Any]:
        """The lint's facts of the official (record-level) accounting: Poisson sampling of
        examples at ``b / N`` over DP-SGD steps, beside what runs: ``m`` of ``N`` clients drawn
        without replacement each round, each releasing its whole clipped LoRA delta
        (client-level clipping; the step counts are in different units, so not compared)."""
        if self.noise_multiplier is None:
            self.prepare(schedule)
        spec = self.official_spec(schedule, float(self.noise_multiplier))
        every = schedule.clients_per_round == schedule.num_clients
        return {"sampling_assumed": "poisson" if spec.sample_rate < 1.0 else "none",
                "sample_rate_assumed": spec.sample_rate,
                "sampling_used": "all" if every else "without-replacement",
                "sample_rate_used": schedule.sample_rate, "unit_released": "client",
                "adjacency_accounted": spec.adjacency, "operations": ("clip", "noise", "aggregate")}

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        if self.noise_multiplier is None:
            self.prepare(schedule)
        z = float(self.noise_multiplier)
        spec = self.official_spec(schedule, z)
        eps = epsilon(spec, delta=self.delta, accountant=OFFICIAL_ACCOUNTANT)
        unit = "one training example (sample-level DP-SGD accounting, add-or-remove)"
        official = PrivacyClaim(
            has_dp=True,
            statement=(f"({eps:.4g}, {self.delta:g})-DP for {unit}, as the official code "
                       f"accounts it: {spec.describe()}."),
            epsilon=eps, delta=self.delta, unit=unit, trust_model=TrustModel.CENTRAL,
            compositions=spec.compositions, accountant=accountant_label(OFFICIAL_ACCOUNTANT),
            mechanism=self.mechanism_description(), label="official accounting",
            alternatives=self.as_run_claims(schedule),
            unit_level="record", adjacency=spec.adjacency,
            assumptions=spec.assumptions("training example") + (
                "per-example clipping and noise (the official code's DP-SGD accounting), while "
                "the release is a client's clipped LoRA delta",))
        return official

    def mechanism_description(self) -> str:
        return (f"per-matrix clip C = {self.clip_norm:g} of each trained LoRA delta, Gaussian "
                f"noise sigma C / sqrt(K) per client, sigma = {float(self.noise_multiplier):.6g}")

    def as_run_claims(self, schedule: FederationSchedule) -> tuple[PrivacyClaim, ...]:
        """The claims for the mechanism as it runs (needs the run's release records)."""
        if len(self.releases) < schedule.rounds:
            return ()
        z = float(self.noise_multiplier)
        k = schedule.clients_per_round
        records = self.releases[: schedule.rounds]
        claims = []
        for label, trust, scale, neighbouring, who in (
            ("as run, aggregate", TrustModel.CENTRAL, 1.0, Neighbouring.ADD_OR_REMOVE,
             "observers of the aggregate (a trusted server, or secure aggregation)"),
            ("as run, each update", TrustModel.LOCAL, 1.0 / math.sqrt(k), Neighbouring.REPLACE,
             "the server, which sees each client's noised update"),
        ):
            specs = [GaussianEventSpec(z * scale / rec.sensitivity_factor, 1, 1.0, neighbouring)
                     for rec in records]
            eps = composed_epsilon(specs, delta=self.delta)
            worst = max(rec.sensitivity_factor for rec in records)
            unit = (f"one client's data (client-level, {neighbouring.value}; L2 sensitivity of a "
                    f"release up to {worst:.3g} C over {len(records[0].factors)}+ clipped matrices)")
            claims.append(PrivacyClaim(
                has_dp=True,
                statement=(f"({eps:.4g}, {self.delta:g})-DP for {unit}, against {who}, over "
                           f"{len(records)} release(s) of {k} client(s) each."),
                epsilon=eps, delta=self.delta, unit=unit, trust_model=trust,
                compositions=len(records), accountant=accountant_label("pld"),
                mechanism=self.mechanism_description(), label=label,
                unit_level="client", adjacency=specs[0].adjacency,
                assumptions=(f"every client counted in each of its {len(records)} release(s)",
                             "per-release L2 sensitivity as recorded in the run"),
                parts=tuple({"name": f"round {rec.round}", "noise_multiplier": s.noise_multiplier,
                             "sensitivity_factor": rec.sensitivity_factor}
                            for rec, s in zip(records, specs))))
        return tuple(claims)
