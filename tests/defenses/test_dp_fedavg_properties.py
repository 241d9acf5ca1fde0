"""Hypothesis properties of DP-FedAvg's mechanism: sensitivity after clipping is at most C
for any pair of updates, the noise std is what the accountant asked for, noise is fresh on
every call, and claims compose over rounds as the accountant says."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.privacy.accounting.accountants import GaussianEventSpec, Neighbouring, epsilon
from audit.core.defense import DEFENSES, FederationSchedule
from audit.privacy.testing.strategies import clip_norms, neighbouring_updates, noise_multipliers
from audit.core.updates import ModelUpdate, UpdateKind
from defenses.gaussian_mechanism import clip_l2, global_l2_norm


@settings(max_examples=60, deadline=None)
@given(pair=neighbouring_updates(), clip=clip_norms())
def test_replace_one_sensitivity_after_clipping_is_at_most_2c(pair, clip):
    u, v = pair
    cu, _ = clip_l2(u, clip)
    cv, _ = clip_l2(v, clip)
    diff = {n: cu[n] - cv[n] for n in cu}
    assert float(global_l2_norm(diff)) <= 2 * clip * (1 + 1e-9)
    assert float(global_l2_norm(cu)) <= clip * (1 + 1e-9)  # add/remove: sensitivity C


@settings(max_examples=15, deadline=None)
@given(z=st.floats(0.5, 8.0), clip=st.floats(0.1, 10.0), seed=st.integers(0, 2**16))
def test_noise_std_is_what_the_accountant_was_told(z, clip, seed):
    d = DEFENSES.create("dp-fedavg", clip_norm=clip, noise_multiplier=z, mode="local")
    update = ModelUpdate(UpdateKind.GRADIENT, {"w": torch.zeros(40_000, dtype=torch.float64)}, client_id=0)
    noise = d.client_side(update, generator=torch.Generator().manual_seed(seed)).tensors["w"]
    # 40k draws: sample std within 3% of z*C except with probability < 1e-6
    assert float(noise.std()) == pytest.approx(z * clip, rel=0.03)
    claim = d.claim(FederationSchedule(1, 1, 1))
    assert claim.epsilon == pytest.approx(
        epsilon(GaussianEventSpec(z, 1, 1.0, Neighbouring.REPLACE), delta=1e-5), rel=1e-9
    )


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_noise_is_fresh_on_every_call(seed):
    d = DEFENSES.create("dp-fedavg", clip_norm=1.0, noise_multiplier=1.0)
    gen = torch.Generator().manual_seed(seed)
    update = ModelUpdate(UpdateKind.GRADIENT, {"w": torch.zeros(16)}, client_id=0)
    a = d.client_side(update, generator=gen).tensors["w"]
    b = d.client_side(update, generator=gen).tensors["w"]
    assert not torch.equal(a, b)


@settings(max_examples=10, deadline=None)
@given(z=noise_multipliers(), rounds=st.integers(1, 50), mode=st.sampled_from(["local", "central"]))
def test_claims_compose_over_rounds(z, rounds, mode):
    d = DEFENSES.create("dp-fedavg", clip_norm=1.0, noise_multiplier=z, mode=mode)
    sched = FederationSchedule(num_clients=10, clients_per_round=5, rounds=rounds)
    claim = d.claim(sched)
    if mode == "local":
        spec = GaussianEventSpec(z, rounds, 1.0, Neighbouring.REPLACE)
    else:
        spec = GaussianEventSpec(z, rounds, 0.5, Neighbouring.ADD_OR_REMOVE)
    assert claim.compositions == rounds
    assert claim.epsilon == pytest.approx(epsilon(spec, delta=1e-5), rel=1e-9)
    if rounds > 1:
        fewer = d.claim(FederationSchedule(num_clients=10, clients_per_round=5, rounds=rounds - 1))
        assert fewer.epsilon <= claim.epsilon
