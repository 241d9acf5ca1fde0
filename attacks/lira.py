"""LiRA, the likelihood-ratio membership attack (Carlini et al. 2022, "Membership
inference attacks from first principles").

The adversary trains shadow models with the target's procedure, each candidate in half
of them, and fits per candidate a Gaussian to the logit-scaled confidence
(:func:`attacks.membership_signals.logit_confidence`) of the models that trained on it (IN)
and of those that did not (OUT), on each query augmentation.

* ``online``: score = sum over augmentations of ``log N(phi; mu_in, s_in) - log N(phi;
  mu_out, s_out)``.
* ``offline``: OUT models only; score = sum over augmentations of ``log Phi((phi -
  mu_out) / s_out)`` (one-sided test: is the target's confidence high for an OUT model?).
* ``fixed_variance``: one variance per side pooled over all candidates instead of per
  candidate; the paper recommends it below 64 shadow models. ``None`` (default) picks it
  automatically when ``shadow_models < 64``.

Project choices: per-candidate standard deviations are floored at 1e-3 (nats); a
candidate with no IN (or OUT) model, possible only with one shadow model, uses the pooled
statistics of that side.
"""

from __future__ import annotations

from typing import Any

import torch

from audit.core.attack import Attack, AttackResult, MembershipView
from attacks.membership_signals import augmentations, query, reference_signals
from audit.core.validation import check_bool, check_interval, check_options

MIN_STD = 1e-3


def _side_stats(signals: torch.Tensor, mask: torch.Tensor, fixed: bool):
    """Per-candidate mean and std (N, A) over the models selected by ``mask`` (K, N)."""
    w = mask.double().unsqueeze(-1)  # (K, N, 1)
    count = w.sum(0)  # (N, 1)
    mean = (signals * w).sum(0) / count.clamp(min=1)
    resid = (signals - mean) * w
    pooled_var = (resid**2).sum((0, 1)) / (count.sum() - count.gt(0).sum()).clamp(min=1)  # (A,)
    if fixed:
        std = pooled_var.sqrt().expand_as(mean)
    else:
        var = (resid**2).sum(0) / (count - 1).clamp(min=1)
        std = torch.where(count > 1, var.sqrt(), pooled_var.sqrt().expand_as(mean))
    pooled_mean = (signals * w).sum((0, 1)) / count.sum().clamp(min=1)
    mean = torch.where(count > 0, mean, pooled_mean.expand_as(mean))
    return mean, std.clamp(min=MIN_STD)


def _log_normal(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - torch.log(std)


class LiRA(Attack):
    """Likelihood-ratio attack with shadow models (online / offline, fixed variance)."""

    name = "lira"
    family = "membership-inference"
    default_threat_model = "model-analyst"

    def __init__(self, *, shadow_models: int = 16, variant: str = "online",
                 fixed_variance: bool | None = None) -> None:
        self.shadow_models = check_interval("shadow_models", self.name, shadow_models, kind=int,
                                            low=1, high=4096)
        self.variant = check_options("variant", self.name, variant, ["online", "offline"])
        self.fixed_variance = (self.shadow_models < 64 if fixed_variance is None
                               else check_bool("fixed_variance", self.name, fixed_variance))

    def params(self) -> dict[str, Any]:
        return {"shadow_models": self.shadow_models, "variant": self.variant,
                "fixed_variance": self.fixed_variance}

    def run(self, view: MembershipView, *, generator: torch.Generator, device: torch.device,
            progress: bool = False) -> AttackResult:
        masks, shadow, _ = reference_signals(view, self.shadow_models, generator, "logit")
        masks = torch.as_tensor(masks)
        shifts = augmentations(view.modality, view.input_shape)
        target = query(view.model, view.candidates.inputs, view.candidates.labels, shifts, "logit")
        return AttackResult(scores=self.score(target, shadow, masks),
                            stats={"augmentations": float(len(shifts))})

    def score(self, target: torch.Tensor, shadow: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """LiRA scores (N,) from logit-scaled confidences, with no model at hand.

        ``target`` (N, A) is the target's signal per candidate and augmentation, ``shadow``
        (K, N, A) the shadow models', ``masks`` (K, N) bool which candidates each shadow model
        trained on. :meth:`run` and the score-level audit both score through here.
        """
        mu_out, s_out = _side_stats(shadow, ~masks, self.fixed_variance)
        if self.variant == "online":
            mu_in, s_in = _side_stats(shadow, masks, self.fixed_variance)
            score = (_log_normal(target, mu_in, s_in) - _log_normal(target, mu_out, s_out)).sum(1)
        else:
            z = (target - mu_out) / s_out
            score = torch.special.log_ndtr(z).sum(1)
        return score.float()
