"""RMIA, the relative membership-inference attack (Zarifzadeh et al. 2024, "Low-cost
high-power membership inference attacks").

For a candidate x and population samples z (never trained on), with ``p(.|theta)`` the
target's probability of the true label and ``Pr(.)`` its average over reference models:

    LR(x, z) = [p(x|theta) / Pr(x)] / [p(z|theta) / Pr(z)],
    score(x) = fraction of population samples z with LR(x, z) >= gamma.

* ``online``: reference models trained with and without x (balanced halves), ``Pr(x)`` =
  mean over all of them.
* ``offline``: OUT reference models only, with the paper's approximation ``P_IN(x) ~
  a * P_OUT(x) + (1 - a)``, so ``Pr(x) = ((1 + a) P_OUT(x) + 1 - a) / 2``; population
  samples use the same formula. ``a = None`` (default) chooses ``a`` in {0, 0.1, ..., 1}
  as the paper does: one reference model plays the target, the others the references,
  and the ``a`` with the highest AUC on its known members wins.

Project choices: probabilities are averaged over the query augmentations before the
ratio; ties in the fraction (frequent when x beats every z) are broken by ``LR`` itself
(a monotone refinement: ``score + 1e-6 * sigmoid(log ratio(x))``).
"""

from __future__ import annotations

from typing import Any

import torch

from audit.core.attack import Attack, AttackResult, MembershipView
from attacks.membership_signals import augmentations, query, reference_signals
from audit.core.validation import check_interval, check_options, check_positive

A_GRID = tuple(round(0.1 * i, 1) for i in range(11))


def _fraction_dominated(ratio_x: torch.Tensor, ratio_z: torch.Tensor, gamma: float) -> torch.Tensor:
    """For each x: share of z with ratio_x / ratio_z >= gamma, tie-broken by ratio_x."""
    sorted_z = torch.sort(ratio_z).values
    count = torch.searchsorted(sorted_z, ratio_x / gamma, right=True)
    frac = count.double() / max(len(sorted_z), 1)
    return frac + 1e-6 * torch.sigmoid(torch.log(ratio_x.clamp(min=1e-300)))


def _auc(scores: torch.Tensor, members: torch.Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    m = members.numpy()
    if m.all() or not m.any():
        return 0.5
    return float(roc_auc_score(m, scores.numpy()))


class RMIA(Attack):
    """Relative membership inference against population samples (online / offline)."""

    name = "rmia"
    family = "membership-inference"
    default_threat_model = "model-analyst"

    def __init__(self, *, shadow_models: int = 16, variant: str = "offline", gamma: float = 1.0,
                 a: float | None = None) -> None:
        self.shadow_models = check_interval("shadow_models", self.name, shadow_models, kind=int,
                                            low=1, high=4096)
        self.variant = check_options("variant", self.name, variant, ["online", "offline"])
        self.gamma = check_positive("gamma", self.name, gamma)
        self.a = None if a is None else check_interval("a", self.name, a, low=0, high=1)
        if self.variant == "offline" and self.a is None:  # a is calibrated on the references
            check_interval("shadow_models", f"{self.name} (offline, a chosen from the reference "
                           "models)", self.shadow_models, kind=int, low=3)
        self.chosen_a: float | None = None

    def params(self) -> dict[str, Any]:
        return {"shadow_models": self.shadow_models, "variant": self.variant,
                "gamma": self.gamma, "a": self.a}

    def _scores(self, p_x, p_z, ref_x, ref_z, in_mask, a):
        """RMIA scores from target probabilities and reference probabilities (K, .)."""
        if self.variant == "online":
            pr_x = ref_x.mean(0)
            pr_z = ref_z.mean(0)
        else:
            out = (~in_mask).double()
            p_out = (ref_x * out).sum(0) / out.sum(0).clamp(min=1)
            pr_x = 0.5 * ((1 + a) * p_out + 1 - a)
            pr_z = 0.5 * ((1 + a) * ref_z.mean(0) + 1 - a)
        ratio_x = p_x / pr_x.clamp(min=1e-300)
        ratio_z = p_z / pr_z.clamp(min=1e-300)
        return _fraction_dominated(ratio_x, ratio_z, self.gamma)

    def run(self, view: MembershipView, *, generator: torch.Generator, device: torch.device,
            progress: bool = False) -> AttackResult:
        if view.population is None or len(view.population) == 0:
            raise ValueError("RMIA needs population samples (threat model with population data)")
        masks, ref_x, ref_z = reference_signals(view, self.shadow_models, generator,
                                                "probability", population=True)
        masks = torch.as_tensor(masks)
        ref_x, ref_z = ref_x.mean(-1), ref_z.mean(-1)  # average over augmentations
        shifts = augmentations(view.modality, view.input_shape)
        p_x = query(view.model, view.candidates.inputs, view.candidates.labels, shifts,
                    "probability").mean(1)
        p_z = query(view.model, view.population.inputs, view.population.labels, shifts,
                    "probability").mean(1)
        scores, a = self.score(p_x, p_z, ref_x, ref_z, masks)
        stats = {"a": float(a)} if a is not None else {}
        return AttackResult(scores=scores, stats=stats)

    def score(self, p_x, p_z, ref_x, ref_z, masks) -> tuple[torch.Tensor, float | None]:
        """RMIA scores (N,) and the ``a`` used, from probabilities, with no model at hand.

        ``p_x`` (N,) and ``p_z`` (P,) are the target's probabilities of the true label on
        candidates and population, ``ref_x`` (K, N) and ``ref_z`` (K, P) the reference
        models', ``masks`` (K, N) bool which candidates each reference model trained on.
        :meth:`run` and the score-level audit both score through here.
        """
        a = self.a
        if self.variant == "offline" and a is None:
            a = self._choose_a(masks, ref_x, ref_z)
        self.chosen_a = a
        return self._scores(p_x, p_z, ref_x, ref_z, masks, a).float(), a

    def _choose_a(self, masks, ref_x, ref_z) -> float:
        """The paper's calibration: reference model 0 as target, the rest as references."""
        best = (-1.0, A_GRID[0])
        for a in A_GRID:
            s = self._scores(ref_x[0], ref_z[0], ref_x[1:], ref_z[1:], masks[1:], a)
            auc = _auc(s, masks[0])
            if auc > best[0] + 1e-12:
                best = (auc, a)
        return best[1]
