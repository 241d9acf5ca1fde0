"""DP-FedAvg: mechanism behaviour, claims from the accountant, parameter validation."""

import pytest
import torch

from audit.privacy.accounting.accountants import GaussianEventSpec, Neighbouring, epsilon
from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.core.updates import ModelUpdate, UpdateKind
from defenses.gaussian_mechanism import global_l2_norm


def _update(scale=10.0):
    g = torch.Generator().manual_seed(1)
    return ModelUpdate(UpdateKind.GRADIENT, {"w": scale * torch.randn(50, generator=g)}, client_id=0, num_examples=1)


def test_local_mode_clips_then_noises_with_z_times_c():
    d = DEFENSES.create("dp-fedavg", clip_norm=2.0, noise_multiplier=0.5, mode="local")
    gen = torch.Generator().manual_seed(0)
    obs = [d.client_side(_update(), generator=gen) for _ in range(400)]
    clipped = d.client_side(_update(), generator=torch.Generator().manual_seed(0))
    noise = torch.stack([o.tensors["w"] for o in obs])
    noise = noise - noise.mean(0)
    assert float(noise.std()) == pytest.approx(1.0, rel=0.05)  # z*C = 0.5*2
    assert clipped.info["norm_before_clipping"] > 2.0


def test_central_mode_observation_is_clipped_only_and_aggregate_noised():
    d = DEFENSES.create("dp-fedavg", clip_norm=1.0, noise_multiplier=1.0, mode="central")
    sched = FederationSchedule(num_clients=4, clients_per_round=4, rounds=1)
    d.prepare(sched)
    gen = torch.Generator().manual_seed(0)
    obs = [d.client_side(_update(), generator=gen) for _ in range(4)]
    assert all(float(global_l2_norm(o.tensors)) == pytest.approx(1.0, rel=1e-5) for o in obs)
    agg = d.server_side(obs, generator=gen)
    mean_clipped = sum(o.tensors["w"] for o in obs) / 4
    assert not torch.allclose(agg.tensors["w"], mean_clipped)


def test_local_claim_equals_accountant_replace_one():
    d = DEFENSES.create("dp-fedavg", clip_norm=1.0, noise_multiplier=3.0, mode="local")
    sched = FederationSchedule(num_clients=8, clients_per_round=2, rounds=3)
    claim = d.claim(sched)
    expected = epsilon(GaussianEventSpec(3.0, 3, 1.0, Neighbouring.REPLACE), delta=1e-5)
    assert claim.has_dp and claim.epsilon == pytest.approx(expected)
    assert claim.trust_model.value == "local" and "PLD" in claim.accountant


def test_central_claim_uses_sampling_rate():
    d = DEFENSES.create("dp-fedavg", clip_norm=1.0, noise_multiplier=1.0, mode="central", accountant="rdp")
    sched = FederationSchedule(num_clients=100, clients_per_round=10, rounds=20)
    expected = epsilon(GaussianEventSpec(1.0, 20, 0.1), delta=1e-5, accountant="rdp")
    assert d.claim(sched).epsilon == pytest.approx(expected)


def test_target_epsilon_is_calibrated():
    d = DEFENSES.create("dp-fedavg", clip_norm=1.0, target_epsilon=1.0, mode="local")
    claim = d.claim(FederationSchedule(num_clients=1, clients_per_round=1, rounds=1))
    assert 0.99 <= claim.epsilon <= 1.0 + 1e-6


def test_zero_noise_makes_no_claim():
    d = DEFENSES.create("dp-fedavg", clip_norm=1.0, noise_multiplier=0.0)
    assert not d.claim(FederationSchedule(num_clients=1, clients_per_round=1, rounds=1)).has_dp


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"clip_norm": 0.0, "noise_multiplier": 1.0}, "clip_norm"),
        ({"clip_norm": -1.0, "noise_multiplier": 1.0}, "clip_norm"),
        ({"noise_multiplier": -0.1}, "noise_multiplier"),
        ({}, "noise_multiplier"),
        ({"noise_multiplier": 1.0, "target_epsilon": 1.0}, "target_epsilon"),
        ({"noise_multiplier": 1.0, "mode": "hybrid"}, "hybrid"),
        ({"noise_multiplier": 1.0, "clip": 1.0}, "clip"),
        ({"noise_multiplier": 1.0, "local_steps": 3}, "local_steps"),
    ],
)
def test_bad_parameters_are_named(params, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        DEFENSES.create("dp-fedavg", **params)


def test_fedavg_makes_no_claim_and_averages():
    d = DEFENSES.create("fedavg", local_steps=3, lr=0.05)
    assert d.local_training.steps == 3 and d.local_training.kind is UpdateKind.MODEL_DELTA
    a = ModelUpdate(UpdateKind.MODEL_DELTA, {"w": torch.ones(2)}, num_examples=1)
    b = ModelUpdate(UpdateKind.MODEL_DELTA, {"w": 3 * torch.ones(2)}, num_examples=3)
    agg = d.server_side([a, b], generator=torch.Generator())
    assert torch.allclose(agg.tensors["w"], torch.full((2,), 2.5, dtype=agg.tensors["w"].dtype))
    assert not d.claim(FederationSchedule(1, 1, 1)).has_dp
