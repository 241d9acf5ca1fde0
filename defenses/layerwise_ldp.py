"""Layer-wise local DP around FedSGD/FedAvg: the shared machinery of ``fedre`` and its
baseline ``uniform-ldp``.

Each client clips every layer of its update to ``C_l`` and adds ``N(0, (z_l C_l)^2)``
(:mod:`defenses.layerwise_gaussian`) before sending. The layers' noise multipliers come
from *shares* of one Gaussian budget: the whole-update noise multiplier ``z`` is calibrated
by the accountant so that ``rounds`` releases are ``(target_epsilon, delta)``-DP for one
client's local data (replace-one, as ``dp-fedavg`` in local mode), and layer l gets
``z_l = z / sqrt(w_l)``. Subclasses choose the shares (:meth:`LayerwiseLDP.layer_shares`)
and the aggregation (:meth:`LayerwiseLDP.aggregate`); this base spreads the budget evenly
and averages.

Choices: the shares are fixed at the start of the run from the broadcast model and the
server's public split (:meth:`setup_server`), so they are public and the claim is exact;
the claim's per-layer epsilons and its total come from the accountant (the total from
composing the per-layer events, which equals the calibrated target up to PLD's
discretisation).
"""

from __future__ import annotations

from collections.abc import Sequence
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
from audit.core.defense import FederationSchedule
from audit.core.updates import ClientData, LocalTraining, ModelUpdate
from audit.core.validation import check_interval, check_options, check_positive
from defenses.fedavg import FedAvg, WrappingDefense
from defenses.layerwise_gaussian import LAYER_CLIPS, LayerBudget, clip_and_noise, layer_budgets
from defenses.psi_scores import parameter_layers


class LayerwiseLDP(WrappingDefense):
    """Per-layer clipping and Gaussian noise on the client, budget spread evenly."""

    name: ClassVar[str] = "layerwise-ldp"
    own_keys: ClassVar[tuple[str, ...]] = ("clip_norm", "target_epsilon", "delta", "layer_clip")

    def __init__(
        self,
        inner: FedAvg,
        *,
        clip_norm: float = 1.0,
        target_epsilon: float = 8.0,
        delta: float = 1e-5,
        layer_clip: str = "equal",
    ) -> None:
        self.inner = inner
        self.clip_norm = check_positive("clip_norm", self.name, clip_norm)
        self.target_epsilon = check_positive("target_epsilon", self.name, target_epsilon)
        self.delta = check_interval("delta", self.name, delta, low=0, high=1, closed="neither")
        self.layer_clip = check_options("layer_clip", self.name, layer_clip, LAYER_CLIPS)
        self.noise_multiplier: float | None = None  # of the whole update, after prepare()
        self.budgets: list[LayerBudget] | None = None  # after setup_server()
        self._schedule: FederationSchedule | None = None

    def params(self) -> dict[str, Any]:
        return {
            **self.inner_params(),
            "clip_norm": self.clip_norm,
            "target_epsilon": self.target_epsilon,
            "delta": self.delta,
            "layer_clip": self.layer_clip,
            "noise_multiplier": self.noise_multiplier,
        }

    def public_state(self) -> dict[str, Any]:
        """:meth:`params` plus each layer's noise standard deviation and clip norm (public:
        the per-layer budgets are fixed from public data), for adaptive attacks."""
        state = self.params()
        if self.budgets is not None:
            state["layer_noise_std"] = {b.layer: b.noise_std for b in self.budgets}
            state["layer_clip_norm"] = {b.layer: b.clip_norm for b in self.budgets}
        return state

    # -- budget -------------------------------------------------------------------------

    @staticmethod
    def _spec(z: float, rounds: int) -> GaussianEventSpec:
        return GaussianEventSpec(z, rounds, 1.0, Neighbouring.REPLACE)

    def prepare(self, schedule: FederationSchedule) -> None:
        """Calibrate the whole-update noise multiplier to ``target_epsilon`` over the rounds."""
        self._schedule = schedule
        self.noise_multiplier = calibrate_noise_multiplier(
            self._spec(1.0, schedule.rounds), target_epsilon=self.target_epsilon,
            delta=self.delta, accountant="pld")

    def layer_shares(self, model: nn.Module, public: ClientData | None,
                     layers: dict[str, list[str]]) -> dict[str, float]:
        """Each layer's share of the budget (sum 1). Here: even."""
        return {name: 1.0 / len(layers) for name in layers}

    def setup_server(self, *, model: nn.Module, public: ClientData | None,
                     training: LocalTraining | None = None) -> None:
        """Fix the per-layer budgets from the broadcast model (and the public split)."""
        if self.noise_multiplier is None:
            raise RuntimeError("call prepare(schedule) before running the simulation")
        self._model, self._public = model, public
        self._training = training or self.local_training
        layers = parameter_layers(model)
        shares = self.layer_shares(model, public, layers)
        self.budgets = layer_budgets(
            layers, shares, noise_multiplier=self.noise_multiplier, clip_norm=self.clip_norm,
            numels={n: p.numel() for n, p in model.named_parameters()},
            layer_clip=self.layer_clip)

    # -- data flow ----------------------------------------------------------------------

    def client_side(self, update: ModelUpdate, *, generator: torch.Generator) -> ModelUpdate:
        if self.budgets is None:
            raise RuntimeError("setup_server(...) fixes the layer budgets before any client update")
        update = self.inner.client_side(update, generator=generator)
        noised, norms = clip_and_noise(update.tensors, self.budgets, generator=generator)
        clipped = sum(1 for b in self.budgets if norms[b.layer] > b.clip_norm)
        return update.with_tensors(noised, layers_clipped=float(clipped))

    def aggregate(self, observations: Sequence[ModelUpdate], *,
                  generator: torch.Generator) -> ModelUpdate:
        """The server's aggregate. Here: the inner defense's (example-weighted) mean."""
        return self.inner.server_side(observations, generator=generator)

    def server_side(self, observations: Sequence[ModelUpdate], *,
                    generator: torch.Generator) -> ModelUpdate:
        return self.aggregate(observations, generator=generator)

    # -- claim --------------------------------------------------------------------------

    def accounting_facts(self, schedule: FederationSchedule) -> dict[str, Any]:
        """The lint's facts: no amplification by sampling is claimed (every round composed,
        replace-one), whole client updates are clipped and noised per layer on the client."""
        every = schedule.clients_per_round == schedule.num_clients
        return {"sampling_assumed": "none", "sampling_used": "all" if every else "without-replacement",
                "sample_rate_used": schedule.sample_rate, "unit_released": "client", "adjacency_accounted": "replace-one",
                "operations": ("clip", "noise", "aggregate")}

    def claim(self, schedule: FederationSchedule) -> PrivacyClaim:
        if self.noise_multiplier is None:
            self.prepare(schedule)
        z, rounds = float(self.noise_multiplier), schedule.rounds
        unit = "one client's local data (replace-one, L2 sensitivity 2C_l per layer and release)"
        parts: tuple[dict, ...] = ()
        if self.budgets is None:
            total = epsilon(self._spec(z, rounds), delta=self.delta, accountant="pld")
            how = "per-layer budgets are fixed when the run starts"
        else:
            specs = [self._spec(b.noise_multiplier, rounds) for b in self.budgets]
            total = composed_epsilon(specs, delta=self.delta)
            parts = tuple(
                {"name": b.layer, "epsilon": epsilon(s, delta=self.delta, accountant="pld"),
                 "noise_multiplier": b.noise_multiplier, "clip_norm": b.clip_norm,
                 "share": b.share}
                for b, s in zip(self.budgets, specs))
            how = f"{len(self.budgets)} layers composed"
        return PrivacyClaim(
            has_dp=True,
            statement=(
                f"({total:.4g}, {self.delta:g})-DP for {unit}, against the server and any "
                f"observer of client updates, over {rounds} round(s); {how}."),
            epsilon=total,
            delta=self.delta,
            unit=unit,
            trust_model=TrustModel.LOCAL,
            compositions=rounds,
            accountant=accountant_label("pld"),
            mechanism=(f"layer-wise Gaussian: per-layer clip and noise z_l = z/sqrt(share_l), "
                       f"z = {z:.6g} for the whole update, {self._share_rule()}"),
            parts=parts,
            unit_level="client", adjacency="replace-one",
            assumptions=self._spec(z, rounds).assumptions("client") + (
                "each layer's noise composes with the others' (the layers are released together)",),
        )

    def _share_rule(self) -> str:
        return "shares even over layers"
