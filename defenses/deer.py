"""DEeR (Wang et al., arXiv 2410.12926, IEEE TMI; official code CUHK-AIM-Group/DEeR):
federated LoRA with a deviation eliminator and a noise regulator.

* **Deviation eliminator**: a DEeR round is two phases, each one federated round of the
  harness: phase 1 freezes every A and trains (and averages) B; phase 2 freezes B and
  trains A. Only one factor varies across clients at a time, so the mean of the clients'
  products ``B_k A`` is the product of the means, exactly; plain averaging of both factors
  gives ``mean(B_k) mean(A_k) != mean(B_k A_k)`` (the aggregation deviation).
* **Noise regulator**: each client clips the delta of each trained matrix to ``C`` and
  draws ``xi_W ~ N(0, (sigma C / sqrt(K))^2)`` of the *full weight's* shape (d_out x d_in),
  mapped onto the trained factor through its frozen peer
  (:mod:`defenses.lora_noise_regulator`): ``xi_A = (B^T B)^{-1} B^T xi_W``,
  ``xi_B = xi_W A^T (A A^T)^{-1}``; the product then receives exactly the projection of
  ``xi_W``.

As in the code, B is trained first (its peer A is Kaiming-initialised, full rank; B is zero
at the start and could not be a peer) and the server averages unweighted. The shared
machinery and the two claims (official accounting, mechanism as run) are in
:mod:`defenses.lora_dp`. As run, the map through the peer scales the release's sensitivity
by the peer's largest singular value (a peer that grows past 1 weakens the noise), and a
DEeR round is two releases; the official accounting sees neither.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from defenses.lora_dp import LoraDP
from defenses.lora_noise_regulator import noise_for_a, noise_for_b, sensitivity_factor


class DEeR(LoraDP):
    """Alternating B / A phases with noise mapped through the frozen peer."""

    name = "deer"
    official_rounds_per_round: ClassVar[float] = 0.5  # the code counts one of the two phases

    def phase(self, round: int) -> str:
        """"B" in even harness rounds (phase 1), "A" in odd ones (phase 2)."""
        return "B" if round % 2 == 0 else "A"

    def trained_matrices(self, round: int):
        if self.phase(round) == "B":
            return [(p.b, p.a, "B") for p in self.pairs]
        return [(p.a, p.b, "A") for p in self.pairs]

    def noise(self, name, peer, side, like, std, *, generator):
        peer_w = self._params[peer].detach().to(like.dtype)
        rows, cols = (peer_w.shape[0], like.shape[1]) if side == "A" else (like.shape[0],
                                                                            peer_w.shape[1])
        xi_w = std * torch.randn((rows, cols), generator=generator, dtype=like.dtype,
                                 device=like.device)
        if side == "A":  # A: r x d_in, its peer B: d_out x r
            return noise_for_a(xi_w, peer_w, name=peer)
        return noise_for_b(xi_w, peer_w, name=peer)

    def noise_factor(self, peer, side) -> float:
        return sensitivity_factor(self._params[peer])

    def mechanism_description(self) -> str:
        return ("DEeR noise regulator: " + super().mechanism_description()
                + ", drawn for the full weight and mapped through the frozen peer factor; "
                "phases alternate B (even rounds) and A (odd rounds)")
