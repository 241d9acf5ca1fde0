"""FFA-LoRA (Sun et al. 2024; a baseline of DEeR, arXiv 2410.12926): A frozen at its
initialisation, only B trained, clipped and noised with Gaussian noise of its own shape
(:mod:`defenses.lora_dp`); with A shared, averaging B has no aggregation deviation."""

from __future__ import annotations

from defenses.lora_dp import LoraDP


class FFALoRA(LoraDP):
    """Only B trained, clipped and noised; A stays at its Kaiming initialisation."""

    name = "ffa-lora"

    def trained_matrices(self, round: int):
        return [(p.b, None, "B") for p in self.pairs]
