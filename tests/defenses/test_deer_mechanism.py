"""DEeR's noise regulator as a DP mechanism: the tester passes it against the claim that
accounts for the peer's largest singular value (the "as run" claim) and flags the nominal
claim that ignores it.

Statistical checks are seeded (deterministic in CI); each states its false-positive rate.
"""

from __future__ import annotations

import math

import pytest
import torch

from audit.privacy.accounting.accountants import GaussianEventSpec, Neighbouring, calibrate_noise_multiplier
from audit.core.defense import FederationSchedule
from audit.privacy.testing.mechanism_tester import test_mechanism
from audit.core.updates import ModelUpdate, UpdateKind
from audit.models.lora import LoraPair
from defenses.deer import DEeR
from defenses.lora_noise_regulator import noise_for_a, sensitivity_factor

DELTA = 1e-5
#: the frozen peer B (d_out 2 x r 2): singular values 3 and 0.5
PEER = torch.tensor([[3.0, 0.0], [0.0, 0.5]], dtype=torch.float64)


def _z(eps: float) -> float:
    return calibrate_noise_multiplier(GaussianEventSpec(1.0, 1, 1.0, Neighbouring.REPLACE),
                                      target_epsilon=eps, delta=DELTA)


class _MappedRelease:
    """One client's phase-A release of a 2 x 1 LoRA A: clip to C = 1, noise
    ``xi_W ~ N(0, s^2)`` mapped through the frozen ``PEER``. ``noise_std`` ``s`` is set so
    that the claimed epsilon holds for noise multiplier ``s / (factor C)``; the as-run claim
    uses ``factor = sigma_max(B)``, the nominal one ``factor = 1``."""

    def __init__(self, eps: float, *, factor: float) -> None:
        self.epsilon, self.delta = eps, DELTA
        self.noise_std = _z(eps) * factor

    def __call__(self, data, *, generator, batch=1):
        a = data.double().reshape(2, 1)
        a = a * min(1.0, 1.0 / float(a.norm()))
        # the columns of xi_A are independent: one solve maps all draws at once
        xi_w = self.noise_std * torch.randn(2, batch, generator=generator, dtype=torch.float64)
        return (a + noise_for_a(xi_w, PEER)).T  # (batch, 2)


def test_noise_regulator_passes_the_as_run_claim_and_the_nominal_claim_is_caught():
    """False-positive rate: a correct claim is flagged with probability <= 5% (Clopper-Pearson
    at 95%); seeded. The neighbours differ along the peer's strongest direction, where the
    mapped noise is weakest (std s / 3)."""
    data, neighbour = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])
    factor = sensitivity_factor(PEER)
    assert factor == pytest.approx(3.0)
    ok = test_mechanism(_MappedRelease(1.0, factor=factor), data, neighbour, samples=200_000,
                        seed=0)
    assert ok.verdict == "PASS", ok.to_dict()
    nominal = test_mechanism(_MappedRelease(1.0, factor=1.0), data, neighbour, samples=200_000,
                             seed=0)
    assert nominal.verdict == "VIOLATION", nominal.to_dict()


def test_deer_client_side_is_the_tested_mechanism():
    """The defense's own client side draws the same release as the tester's mechanism."""
    defense = DEeR(noise_multiplier=1.0, clip_norm=1.0)
    defense.prepare(FederationSchedule(1, 1, 2, examples_per_client=(10,)))
    defense.pairs = [LoraPair("m", "m.lora_A", "m.lora_B", 1.0)]
    defense._params = {"m.lora_A": torch.zeros(2, 1, dtype=torch.float64),
                       "m.lora_B": PEER.clone()}
    delta = torch.tensor([[3.0], [4.0]], dtype=torch.float64)  # norm 5: clipped to 1
    update = ModelUpdate(UpdateKind.MODEL_DELTA, {"m.lora_A": delta}, client_id=0, round=1)
    out = defense.client_side(update, generator=torch.Generator().manual_seed(4))
    assert set(out.tensors) == {"m.lora_A"} and out.info["matrices_clipped"] == 1
    mech = _MappedRelease(1.0, factor=1.0)
    mech.noise_std = defense.noise_multiplier * defense.clip_norm / math.sqrt(1)
    expected = mech(delta.reshape(-1), generator=torch.Generator().manual_seed(4), batch=1)
    assert torch.allclose(out.tensors["m.lora_A"].reshape(-1), expected.reshape(-1), atol=1e-12)
