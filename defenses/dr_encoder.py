"""DR-Encoder (Wu et al., arXiv 2412.17053, AAAI-25): LoRA updates compressed by a gradient
autoencoder trained on synthetic gradients, then clipped and noised (client-level DP).

Two stages, both inside the federated run:

* **stage 1** (the first ``stage1_rounds`` rounds, each one "epoch"): every client trains
  locally and sends, for each LoRA matrix, the mean and standard deviation of its update's
  entries — *without noise*; the server applies no update. After the last stage-1 round
  the server samples synthetic gradients from these statistics and trains the autoencoder
  (:mod:`defenses.gradient_autoencoder`); the encoder goes to the clients, the decoder
  stays with the server;
* **stage 2** (the remaining rounds): a client encodes its LoRA update (standardised,
  blockwise), clips the code to L2 norm ``clip_norm`` C and adds ``N(0, (z C)^2)`` to
  every entry; the server averages the codes, decodes the mean and applies it times
  ``server_lr`` (default 1: the paper's plain decoding).

Claim: ``(epsilon, delta)``-DP per client for the stage-2 code releases (replace-one, the
server sees each code: local trust), ``z`` calibrated by dp_accounting's PLD over the
stage-2 rounds. The stage-1 statistics are outside the claim, and the claim says so.

Choices (the paper's own settings could not be read): the noise is added after encoding
and clipping (one reading of the paper; the DP guarantee is the same post-processing
argument for either order); the autoencoder's sizes and training are parameters
(``ratio`` = compression per block, ``block``, ``hidden``, ``ae_steps``, ``ae_samples``,
``ae_lr``); ``server_lr`` (a FedOpt-style server step, Reddi et al. 2021) is this
project's addition: an autoencoder trained on i.i.d. synthetic gradients keeps about
``1/ratio`` of a real update's energy, like a projection on a random subspace of
``1/ratio`` of the dimensions, whose expectation is ``update / ratio``; ``server_lr =
ratio`` undoes that shrinkage (measured in ``benchmarks/dr_encoder.py``); the statistics are those of the update (model delta) a client would send,
standardised with the average over clients and epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import torch
from torch import nn

from audit.privacy.accounting.accountants import (
    GaussianEventSpec,
    Neighbouring,
    accountant_label,
    calibrate_noise_multiplier,
    epsilon,
)
from audit.core.claims import PrivacyClaim, TrustModel
from audit.core.defense import FederationSchedule, KeyedDefense
from audit.core.errors import InvalidParameterError
from audit.fl.simulation import trained_names
from audit.core.updates import ClientData, LocalTraining, ModelUpdate
from audit.core.validation import (
    check_interval,
    check_noise_or_target,
    check_positive,
)
from defenses.gradient_autoencoder import (
    GradientAutoencoder,
    GradientLayout,
    LayerStats,
    layer_statistics,
    layout_from_statistics,
    train_autoencoder,
)

CODE = "code"


class DREncoder(KeyedDefense):
    """Autoencoder-compressed, clipped and noised LoRA updates after a statistics stage."""

    name: ClassVar[str] = "dr-encoder"
    keys: ClassVar[tuple[str, ...]] = (
        "local_steps", "lr", "momentum", "clip_norm", "target_epsilon", "noise_multiplier",
        "delta", "stage1_rounds", "ratio", "block", "hidden", "ae_steps", "ae_samples",
        "ae_lr", "server_lr")

    def __init__(self, *, local_steps: int = 2, lr: float = 0.1, momentum: float = 0.0,
                 clip_norm: float = 1.0, target_epsilon: float | None = 8.0,
                 noise_multiplier: float | None = None, delta: float = 1e-5,
                 stage1_rounds: int = 1, ratio: int = 16, block: int = 256, hidden: int = 256,
                 ae_steps: int = 300, ae_samples: int = 512, ae_lr: float = 1e-3,
                 server_lr: float = 1.0) -> None:
        owner = self.name
        self._training = self.delta_training(local_steps, lr, momentum)
        self.clip_norm = check_positive("clip_norm", owner, clip_norm)
        # noise_multiplier 0: compression only, no DP claim
        self.target_epsilon, self.noise_multiplier = check_noise_or_target(
            owner, target_epsilon, noise_multiplier, zero_noise=True)
        self._fixed_sigma = noise_multiplier is not None
        self.delta = check_interval("delta", owner, delta, low=0, high=1, closed="neither")
        self.stage1_rounds = check_interval("stage1_rounds", owner, stage1_rounds, kind=int, low=1)
        self.ratio = check_interval("ratio", owner, ratio, kind=int, low=2)
        self.block = check_interval("block", owner, block, kind=int, low=2)
        if self.block // self.ratio < 1:
            raise InvalidParameterError(
                f"The 'ratio' parameter of {owner!r} must leave a code of at least 1 entry per "
                f"block of {self.block}. Got {ratio!r} instead.")
        self.hidden = check_interval("hidden", owner, hidden, kind=int, low=1)
        self.ae_steps = check_interval("ae_steps", owner, ae_steps, kind=int, low=1)
        self.ae_samples = check_interval("ae_samples", owner, ae_samples, kind=int, low=1)
        self.ae_lr = check_positive("ae_lr", owner, ae_lr)
        self.server_lr = check_positive("server_lr", owner, server_lr)
        self._schedule: FederationSchedule | None = None
        self.statistics: list[dict[str, LayerStats]] = []
        self.layout: GradientLayout | None = None
        self.autoencoder: GradientAutoencoder | None = None
        self.autoencoder_info: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {"local_steps": self._training.steps, "lr": self._training.lr,
                "momentum": self._training.momentum, "clip_norm": self.clip_norm,
                "target_epsilon": self.target_epsilon, "noise_multiplier": self.noise_multiplier,
                "delta": self.delta, "stage1_rounds": self.stage1_rounds, "ratio": self.ratio,
                "block": self.block, "hidden": self.hidden, "ae_steps": self.ae_steps,
                "ae_samples": self.ae_samples, "ae_lr": self.ae_lr, "server_lr": self.server_lr,
                "compression": self.autoencoder_info.get("compression")}

    def public_state(self) -> dict[str, Any]:
        """:meth:`params` plus what crossed the wire in the clear: every client's stage-1
        statistics (``statistics``, one mapping layer -> :class:`LayerStats` per client and
        round) and the trained parameters' shapes (``shapes``); the encoder is shipped to
        every client, so it is public too (``encoder``)."""
        return {**self.params(), "statistics": list(self.statistics),
                "shapes": dict(getattr(self, "shapes", {})),
                "encoder": None if self.autoencoder is None else self.autoencoder.encoder}

    def server_state(self) -> dict[str, Any]:
        """The server's decoder and standardisation (``autoencoder``, ``layout``)."""
        return {"autoencoder": self.autoencoder, "layout": self.layout}

    def first_update_round(self) -> int:
        """The first stage-2 round (the stage-1 rounds send statistics only)."""
        return self.stage1_rounds

    # -- schedule -------------------------------------------------------------------------

    def stage2_rounds(self, schedule: FederationSchedule) -> int:
        """Rounds whose releases are noised codes."""
        n = schedule.rounds - self.stage1_rounds
        if n < 1:
            raise InvalidParameterError(
                f"Defense {self.name!r} needs more rounds than stage1_rounds="
                f"{self.stage1_rounds} (stage 2 trains the model). Got rounds={schedule.rounds} "
                "instead.")
        return n

    def _spec(self, z: float, schedule: FederationSchedule) -> GaussianEventSpec:
        return GaussianEventSpec(z, self.stage2_rounds(schedule), 1.0, Neighbouring.REPLACE)

    def prepare(self, schedule: FederationSchedule) -> None:
        self._schedule = schedule
        self.statistics, self.layout, self.autoencoder = [], None, None
        if not self._fixed_sigma:
            self.noise_multiplier = calibrate_noise_multiplier(
                self._spec(1.0, schedule), target_epsilon=float(self.target_epsilon),
                delta=self.delta)
        else:
            self.stage2_rounds(schedule)

    def setup_server(self, *, model: nn.Module, public: ClientData | None,
                     training: LocalTraining | None = None) -> None:
        if self._schedule is None:
            raise RuntimeError("call prepare(schedule) before running the simulation")
        params = dict(model.named_parameters())
        self._device = next(iter(params.values())).device
        self.shapes = {n: tuple(params[n].shape) for n in trained_names(model)}
        size = sum(torch.Size(s).numel() for s in self.shapes.values())
        code = -(-size // self.block) * (self.block // self.ratio)
        if code >= size:
            raise InvalidParameterError(
                f"The 'block' parameter of {self.name!r} gives a code of {code} entries for a "
                f"gradient of {size} trained entries: the code must be smaller than the "
                f"gradient (lower block or raise ratio). Got block={self.block!r}, "
                f"ratio={self.ratio!r} instead.")

    # -- data flow ------------------------------------------------------------------------

    def stage(self, round: int) -> int:
        """1 for the statistics rounds, 2 for the code rounds."""
        return 1 if round < self.stage1_rounds else 2

    def encode(self, tensors) -> torch.Tensor:
        """The flat code of a named update (the client's encoder)."""
        with torch.no_grad():
            return self.autoencoder.encoder(self.layout.flatten(tensors).cpu()).reshape(-1)

    def decode(self, code: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named update decoded from a flat code (the server's decoder)."""
        with torch.no_grad():
            out = self.autoencoder.decoder(code.reshape(self.layout.blocks, -1).float().cpu())
        return self.layout.unflatten(out)

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        if self.stage(update.round) == 1:
            stats = layer_statistics(update.tensors)
            tensors = {}
            for n, s in stats.items():
                tensors[f"{n}::mean"] = torch.tensor([s.mean])
                tensors[f"{n}::std"] = torch.tensor([s.std])
            return ModelUpdate(update.kind, tensors, client_id=update.client_id,
                               round=update.round, num_examples=update.num_examples,
                               info={**update.info, "stage": 1.0})
        if self.autoencoder is None:
            raise RuntimeError("the autoencoder is trained at the end of stage 1")
        code, norm = self.release_code(self.encode(update.tensors), generator=generator)
        return ModelUpdate(update.kind, {CODE: code}, client_id=update.client_id,
                           round=update.round, num_examples=update.num_examples,
                           info={**update.info, "stage": 2.0, "code_norm": norm,
                                 "clipped": float(norm > self.clip_norm)})

    def release_code(self, code: torch.Tensor, *, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """The stage-2 mechanism on a flat code: clip to ``clip_norm``, add ``N(0, (z C)^2)``
        per entry; returns the released code and the code's norm before clipping."""
        norm = float(torch.linalg.vector_norm(code))
        code = code * min(1.0, self.clip_norm / norm) if norm > 0 else code
        noise = torch.randn(code.shape, generator=generator, device=generator.device)
        return code + float(self.noise_multiplier) * self.clip_norm * noise.to(code), norm

    # -- DP auditing (audit.privacy.auditing.defense_audit) ------------------------------------------------

    def canary_client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        """A white-box canary client's release: each tensor of ``update`` is taken as the code
        itself (the auditor is the client and picks its code) and goes through
        :meth:`release_code`, the mechanism the claim is about."""
        return replace(update, tensors={n: self.release_code(t.reshape(-1), generator=generator)[0]
                                        for n, t in update.tensors.items()})

    def noised_rounds(self, schedule: FederationSchedule) -> int:
        """Rounds the claim composes over (stage 2)."""
        return self.stage2_rounds(schedule)

    def server_side(self, observations: Sequence[ModelUpdate], *,
                    generator: torch.Generator) -> ModelUpdate:
        r = observations[0].round
        if self.stage(r) == 1:
            for o in observations:
                self.statistics.append({n: LayerStats(float(o.tensors[f"{n}::mean"]),
                                                      float(o.tensors[f"{n}::std"]))
                                        for n in self.shapes})
            if r == self.stage1_rounds - 1:
                self._train_autoencoder()
            return ModelUpdate(observations[0].kind, {}, round=r)
        mean = sum(o.tensors[CODE] for o in observations) / len(observations)
        decoded = {n: self.server_lr * t.to(self._device) for n, t in self.decode(mean).items()}
        return ModelUpdate(observations[0].kind, decoded, round=r,
                           num_examples=sum(o.num_examples for o in observations))

    def _train_autoencoder(self) -> None:
        self.layout = layout_from_statistics(self.shapes, self.statistics, block=self.block)
        self.autoencoder, self.autoencoder_info = train_autoencoder(
            self.layout, self.statistics, ratio=self.ratio, hidden=self.hidden,
            steps=self.ae_steps, lr=self.ae_lr, samples=self.ae_samples, seed=0)

    # -- claim ----------------------------------------------------------------------------

    def accounting_facts(self, schedule: FederationSchedule) -> dict[str, Any]:
        """The lint's facts: the claim composes the stage-2 rounds only (no sampling
        amplification, replace-one), while every round releases (stage 1 without noise);
        the client clips and noises its code."""
        every = schedule.clients_per_round == schedule.num_clients
        return {"sampling_assumed": "none", "sampling_used": "all" if every else "without-replacement",
                "sample_rate_used": schedule.sample_rate, "steps_accounted": self.stage2_rounds(schedule),
                "steps_run": schedule.rounds, "unit_released": "client",
                "adjacency_accounted": "replace-one", "operations": ("clip", "noise", "aggregate")}

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        if self.noise_multiplier is None:
            self.prepare(schedule)
        z = float(self.noise_multiplier)
        if z == 0:
            return PrivacyClaim.none(
                f"{self.name} with noise_multiplier 0 compresses without noise: no DP claim; "
                "the stage-1 statistics are sent without noise too.")
        spec = self._spec(z, schedule)
        eps = epsilon(spec, delta=self.delta, accountant="pld")
        unit = "one client's data (client-level, replace-one; the clipped code of its update)"
        return PrivacyClaim(
            has_dp=True,
            statement=(f"({eps:.4g}, {self.delta:g})-DP for {unit}, against the server and any "
                       f"observer of the codes, over the {spec.compositions} stage-2 round(s). "
                       f"The {self.stage1_rounds} stage-1 round(s) send each LoRA layer's "
                       "gradient mean and standard deviation WITHOUT noise: they are not "
                       "covered by this claim."),
            epsilon=eps, delta=self.delta, unit=unit, trust_model=TrustModel.LOCAL,
            compositions=spec.compositions, accountant=accountant_label("pld"),
            mechanism=(f"autoencoder code (compression {self.ratio}x per block) clipped to "
                       f"C = {self.clip_norm:g}, Gaussian noise z C, z = {z:.6g}"),
            unit_level="client", adjacency=spec.adjacency,
            assumptions=spec.assumptions("client") + (
                f"the {self.stage1_rounds} stage-1 round(s) release nothing private (they send "
                "statistics without noise)",))
