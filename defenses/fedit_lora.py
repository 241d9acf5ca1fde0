"""FedIT-style DP federated LoRA (the ``LoRA`` baseline of DEeR's code, arXiv 2410.12926):
A and B trained together every round, each matrix's delta clipped to ``C`` and noised with
Gaussian noise of its own shape (:mod:`defenses.lora_dp`). Averaging A and B separately
leaves the aggregation deviation ``mean(B_k) mean(A_k) != mean(B_k A_k)``."""

from __future__ import annotations

from defenses.lora_dp import LoraDP


class FedITLoRA(LoraDP):
    """Both LoRA factors trained, clipped and noised every round."""

    name = "fedit-lora"

    def trained_matrices(self, round: int):
        return [m for p in self.pairs for m in ((p.a, None, "A"), (p.b, None, "B"))]
