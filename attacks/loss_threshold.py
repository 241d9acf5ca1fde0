"""LOSS membership attack (Yeom et al. 2018, "Privacy risk in machine learning: analyzing
the connection to overfitting"): a candidate is called a member when the target's loss on
it is low. The score is the negative cross-entropy; the threshold is swept by the ROC
(no threshold is fitted, so no reference model is needed)."""

from __future__ import annotations

from typing import Any

import torch

from audit.core.attack import Attack, AttackResult, MembershipView
from attacks.membership_signals import query


class LossThreshold(Attack):
    """Score = -loss of the target model on the candidate."""

    name = "loss"
    family = "membership-inference"
    default_threat_model = "model-analyst"

    def params(self) -> dict[str, Any]:
        return {}

    def run(self, view: MembershipView, *, generator: torch.Generator, device: torch.device,
            progress: bool = False) -> AttackResult:
        loss = query(view.model, view.candidates.inputs, view.candidates.labels, ((0, 0),), "loss")
        return AttackResult(scores=self.score(loss[:, 0]))

    @staticmethod
    def score(loss: torch.Tensor) -> torch.Tensor:
        """LOSS scores (N,) from the target's losses (N,): :meth:`run` and the score-level
        audit both score through here."""
        return -loss.float()
