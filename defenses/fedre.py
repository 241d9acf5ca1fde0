"""FedRE (arXiv 2505.04889): layer-wise local DP guided by privacy-sensitive regions, with
perturbation-aware aggregation.

Verified from the paper: clients mark privacy-sensitive information (PSI) regions of their
document images (tax numbers, invoice numbers, totals, ID-like fields); local DP gives
*less* budget (more noise) to the layers whose gradients carry more PSI; the server
aggregates with weights driven by the perturbation, using a small public split of the
training data; the task is text-tamper segmentation (IoU); privacy is evaluated by image
reconstruction from gradients, scored inside the PSI regions.

The mechanism, accountant and claim are shared with the ``uniform-ldp`` baseline
(:mod:`defenses.layerwise_ldp`): per-layer clipping to ``C_l`` and Gaussian noise with
``z_l = z / sqrt(w_l)``, where ``z`` is calibrated by the accountant to ``target_epsilon``
over the rounds, so both defenses spend exactly the same total budget.

Choices (the paper leaves them open; each is a parameter):

* PSI score of a layer: ``s_l = sqrt(E_x ||d g_l(x) / d x_PSI||_F^2)``, estimated with
  ``torch.func`` Jacobian-vector products on ``psi_samples`` examples and ``projections``
  random directions (:mod:`defenses.psi_scores`).
* Scores are computed once, at the start of the run, on the server's public split (which
  carries PSI masks) with the broadcast model, so the shares are public: scores from a
  client's private data would make its noise scales a function of that data outside the
  DP guarantee.
* Shares ``w_l ∝ 1/s_l`` with scores floored at ``floor`` times the largest
  (:func:`defenses.psi_scores.normalized_budget_weights`).
* Perturbation-aware aggregation (``aggregation="perturbation-aware"``): the server scores
  each observation by the training loss (with the task's class weights: unweighted, rare
  tampered pixels would not count and the server would favour updates that predict none),
  on the public split, of the model it would give alone
  (broadcast minus server learning rate times the observation) and weights observations
  by ``softmax(-loss / T)``; ``aggregation="mean"`` turns it off. The weights
  are computed from released observations and public data only (post-processing), so they
  cost no privacy.
* ``T`` is ``temperature`` raised, where needed, until the weights keep an effective
  number of clients ``1 / sum(w_i^2)`` of at least ``min_effective`` times the number of
  observations (bisection on ``log T``; the effective number grows with ``T``). Under
  local DP every observation carries its own noise and the mean over ``n`` clients
  divides the noise variance by ``n``; weights concentrated on one or two clients (what a
  fixed small temperature gives when public losses differ mostly by noise) undo that
  averaging: the noise variance of the aggregate is ``sum(w_i^2)`` times that of one
  observation, so ``min_effective`` bounds it at ``1 / (min_effective * n)``. Measured on
  the documents benchmark: a fixed ``T = 0.1`` put almost all weight on one client and
  took the test IoU from 0.031 (mean) to 0.000 at ``epsilon = 4``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from audit.core.errors import InvalidParameterError
from audit.core.updates import ClientData, ModelUpdate, UpdateKind, average
from audit.core.validation import check_interval, check_options, check_positive
from defenses.fedavg import FedAvg
from defenses.layerwise_ldp import LayerwiseLDP
from defenses.psi_scores import normalized_budget_weights, psi_layer_scores

AGGREGATIONS = ("perturbation-aware", "mean")


class FedRE(LayerwiseLDP):
    """Layer-wise local DP with PSI-guided budgets and perturbation-aware aggregation."""

    name = "fedre"
    own_keys = LayerwiseLDP.own_keys + ("public_size", "psi_samples", "projections", "floor",
                                        "aggregation", "temperature", "min_effective")

    def __init__(
        self,
        inner: FedAvg,
        *,
        public_size: int = 16,
        psi_samples: int = 10,
        projections: int = 8,
        floor: float = 0.05,
        aggregation: str = "perturbation-aware",
        temperature: float = 0.1,
        min_effective: float = 0.75,
        **mechanism: Any,
    ) -> None:
        super().__init__(inner, **mechanism)
        self.public_examples = check_interval("public_size", self.name, public_size, kind=int,
                                              low=1)
        self.psi_samples = check_interval("psi_samples", self.name, psi_samples, kind=int, low=1)
        self.projections = check_interval("projections", self.name, projections, kind=int,
                                          low=1)
        self.floor = check_interval("floor", self.name, floor, low=0, high=1, closed="right")
        self.aggregation = check_options("aggregation", self.name, aggregation, AGGREGATIONS)
        self.temperature = check_positive("temperature", self.name, temperature)
        self.min_effective = check_interval("min_effective", self.name, min_effective, low=0,
                                            high=1)
        self.scores: dict[str, float] | None = None
        self.last_weights: list[float] | None = None

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "public_size": self.public_examples,
            "psi_samples": self.psi_samples,
            "projections": self.projections,
            "floor": self.floor,
            "aggregation": self.aggregation,
            "temperature": self.temperature,
            "min_effective": self.min_effective,
        }

    def layer_shares(self, model: nn.Module, public: ClientData | None,
                     layers: dict[str, list[str]]) -> dict[str, float]:
        """Shares ``∝ 1/s_l`` from PSI scores on the public split."""
        if public is None or public.psi_masks is None:
            raise InvalidParameterError(
                f"Defense {self.name!r} needs a public split with PSI masks: use a dataset "
                "with privacy-sensitive regions ('documents', or 'document-folder' with a psi/ "
                "folder). Got a dataset without PSI masks instead.")
        n = min(self.psi_samples, len(public))
        weight = self._training.loss_weight(public.images.device)
        self.scores = psi_layer_scores(
            model, public.images[:n], public.labels[:n], public.psi_masks[:n],
            projections=self.projections, seed=0,
            loss_fn=lambda out, y: nn.functional.cross_entropy(out, y, weight=weight))
        if set(self.scores) != set(layers):
            raise RuntimeError(f"PSI scores for {sorted(self.scores)} but layers {sorted(layers)}")
        return normalized_budget_weights(self.scores, floor=self.floor)

    def _share_rule(self) -> str:
        return (f"shares proportional to 1/(PSI score), floor {self.floor:g}, scored on "
                f"{min(self.psi_samples, self.public_examples)} public examples")

    def aggregate(self, observations: Sequence[ModelUpdate], *,
                  generator: torch.Generator) -> ModelUpdate:
        if self.aggregation == "mean" or len(observations) == 1:
            self.last_weights = None
            return super().aggregate(observations, generator=generator)
        losses = torch.tensor([self._public_loss(o) for o in observations], dtype=torch.float64)
        weights = perturbation_aware_weights(losses, temperature=self.temperature,
                                             min_effective=self.min_effective)
        self.last_weights = weights.tolist()
        return ModelUpdate(
            kind=observations[0].kind,
            tensors=average(observations, weights=self.last_weights),
            round=observations[0].round,
            num_examples=sum(o.num_examples for o in observations),
        )

    def _public_loss(self, observation: ModelUpdate) -> float:
        """Loss on the public split of the model this observation alone would give."""
        lr = self.local_training.lr if observation.kind is UpdateKind.GRADIENT else 1.0
        params = {n: p.detach() - lr * observation.tensors[n].to(p.device)
                  if n in observation.tensors else p.detach()
                  for n, p in self._model.named_parameters()}
        with torch.no_grad():
            out = functional_call(self._model, params, (self._public.images,))
            weight = self._training.loss_weight(out.device)
            loss = nn.functional.cross_entropy(out, self._public.labels, weight=weight)
        return float(loss) if torch.isfinite(loss) else float("inf")


def effective_number(weights: torch.Tensor) -> float:
    """``1 / sum(w_i^2)`` of normalised weights: ``n`` for uniform, 1 for a single one."""
    return float(1.0 / (weights ** 2).sum())


def perturbation_aware_weights(losses: torch.Tensor, *, temperature: float,
                               min_effective: float) -> torch.Tensor:
    """``softmax(-losses / T)`` with ``T >= temperature`` the smallest temperature whose
    effective number of observations is at least ``min_effective * len(losses)``.

    Infinite losses (diverged observations) get weight 0 and do not count in ``n``."""
    finite = torch.isfinite(losses)
    if not finite.any():
        return torch.full_like(losses, 1.0 / len(losses))
    scores = torch.where(finite, losses - losses[finite].min(), torch.zeros_like(losses))
    target = min_effective * int(finite.sum())

    def weights(t: float) -> torch.Tensor:
        w = torch.softmax(-scores / t, dim=0)
        return torch.where(finite, w, torch.zeros_like(w)) / w[finite].sum()

    w = weights(temperature)
    if effective_number(w) >= target * (1 - 1e-9):
        return w
    lo, hi = temperature, temperature
    while effective_number(weights(hi)) < target * (1 - 1e-9):
        lo, hi = hi, hi * 4
        if hi > 1e12 * temperature:  # equal losses: the limit is uniform over finite ones
            return weights(hi)
    for _ in range(60):  # geometric bisection: enough for 1e-6 relative precision on T
        mid = math.sqrt(lo * hi)
        if effective_number(weights(mid)) >= target * (1 - 1e-9):
            hi = mid
        else:
            lo = mid
    return weights(hi)
