"""DEeR and its baselines through the federated simulation: the deviation eliminator, the
noise regulator in place, the two claims, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.privacy.accounting.accountants import GaussianEventSpec, Neighbouring, composed_epsilon, epsilon
from audit.data.registry import create_dataset
from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from audit.fl.simulation import FederatedSimulation
from audit.core.updates import ClientData, ModelUpdate, UpdateKind
from audit.models.lora import lora_pairs

DELTA = 1e-5


def _data(n: int = 48):
    return create_dataset("digits", limit=n)


def _model(ds, *, seed: int = 0, r: int = 4):
    torch.manual_seed(seed)
    return create_model("vit-lora", input_shape=ds.input_shape, num_classes=ds.num_classes,
                        channel_mean=ds.channel_mean, channel_std=ds.channel_std, hidden=16,
                        layers=1, heads=2, patch=4, mlp=16, r=r)


def _clients(ds, k: int):
    size = len(ds) // k
    return [ClientData(ds.images[i * size:(i + 1) * size], ds.labels[i * size:(i + 1) * size])
            for i in range(k)]


def _schedule(clients, rounds: int) -> FederationSchedule:
    return FederationSchedule(len(clients), len(clients), rounds,
                              examples_per_client=tuple(len(c) for c in clients))


def _run(name: str, rounds: int = 2, k: int = 3, **params):
    ds = _data()
    model = _model(ds)
    clients = _clients(ds, k)
    defense = DEFENSES.create(name, **params)
    schedule = _schedule(clients, rounds)
    defense.prepare(schedule)
    sim = FederatedSimulation(model=model, clients=clients, defense=defense, schedule=schedule,
                              seed=0)
    return defense, model, sim.run(), schedule


def test_deer_trains_b_then_a_and_only_lora_leaves_the_client():
    defense, model, transcript, _ = _run("deer", rounds=2, target_epsilon=3.0)
    pairs = lora_pairs(model)
    b_names, a_names = {p.b for p in pairs}, {p.a for p in pairs}
    first, second = transcript.rounds
    assert all(set(o.tensors) == b_names for o in first.observations)
    assert all(set(o.tensors) == a_names for o in second.observations)
    # the frozen factor and the base do not move in a phase
    for n, value in first.broadcast.items():
        if n not in b_names:
            assert torch.equal(value, second.broadcast[n]), n


@settings(max_examples=25, deadline=None)
@given(k=st.integers(2, 5), seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1.0))
def test_deviation_eliminator_aggregates_the_product_exactly(k, seed, scale):
    """Averaging one factor with the other frozen gives mean_k(B_k A) = mean(B_k) A exactly;
    averaging both (FedIT-style) gives mean(B_k) mean(A_k) != mean(B_k A_k)."""
    g = torch.Generator().manual_seed(seed)
    r, d_out, d_in = 3, 6, 5
    a = torch.randn(r, d_in, generator=g, dtype=torch.float64)
    b = torch.randn(d_out, r, generator=g, dtype=torch.float64)
    d_b = [scale * torch.randn(d_out, r, generator=g, dtype=torch.float64) for _ in range(k)]
    d_a = [scale * torch.randn(r, d_in, generator=g, dtype=torch.float64) for _ in range(k)]
    deer = DEFENSES.create("deer", noise_multiplier=1.0)
    obs = [ModelUpdate(UpdateKind.MODEL_DELTA, {"B": db}, client_id=i) for i, db in enumerate(d_b)]
    agg = deer.server_side(obs, generator=g)  # no pairs: plain unweighted mean of B
    product_of_aggregates = (b - agg.tensors["B"]) @ a
    mean_of_products = sum((b - db) @ a for db in d_b) / k
    assert torch.allclose(product_of_aggregates, mean_of_products, atol=1e-12)
    fedit = DEFENSES.create("fedit-lora", noise_multiplier=1.0)
    both = [ModelUpdate(UpdateKind.MODEL_DELTA, {"A": da, "B": db}, client_id=i)
            for i, (da, db) in enumerate(zip(d_a, d_b))]
    agg = fedit.server_side(both, generator=g)
    deviated = (b - agg.tensors["B"]) @ (a - agg.tensors["A"])
    truth = sum((b - db) @ (a - da) for da, db in zip(d_a, d_b)) / k
    assert (deviated - truth).norm() > 1e-6 * scale ** 2


def test_deer_noise_lands_in_the_peer_subspace():
    """Phase A with a zero update: the product's noise B xi_A lies in B's column space."""
    defense, model, _, _ = _run("deer", rounds=1, noise_multiplier=2.0)  # B is trained now
    pair = lora_pairs(model)[0]
    params = dict(model.named_parameters())
    zero = {p.a: torch.zeros_like(params[p.a]) for p in lora_pairs(model)}
    out = defense.client_side(ModelUpdate(UpdateKind.MODEL_DELTA, zero, round=1),
                              generator=torch.Generator().manual_seed(0))
    b = params[pair.b].detach().double()
    noise = b @ out.tensors[pair.a].double()
    u, _, _ = torch.linalg.svd(b, full_matrices=False)
    assert noise.norm() > 0
    assert torch.allclose(u @ u.T @ noise, noise, atol=1e-5 * float(noise.norm()))


@pytest.mark.parametrize("name", ["fedit-lora", "ffa-lora"])
def test_baselines_train_their_factors(name):
    _, model, transcript, _ = _run(name, rounds=1, target_epsilon=3.0)
    pairs = lora_pairs(model)
    expected = {p.b for p in pairs} | ({p.a for p in pairs} if name == "fedit-lora" else set())
    assert set(transcript.rounds[0].observations[0].tensors) == expected


def test_claims_official_matches_target_and_as_run_follows_the_mechanism():
    defense, model, _, schedule = _run("ffa-lora", rounds=2, target_epsilon=3.0)
    claim = defense.claim(schedule)
    assert claim.label == "official accounting"
    assert claim.epsilon == pytest.approx(3.0, rel=1e-3) and claim.epsilon <= 3.0
    assert {a.label for a in claim.alternatives} == {"as run, aggregate", "as run, each update"}
    # FFA-LoRA as run: each round releases m matrices clipped to C each, isotropic noise
    # sigma C on the sum: noise multiplier sigma / sqrt(m) per round
    m = len(lora_pairs(model))
    z = defense.noise_multiplier / math.sqrt(m)
    agg = next(a for a in claim.alternatives if a.label == "as run, aggregate")
    expected = epsilon(GaussianEventSpec(z, 2, 1.0, Neighbouring.ADD_OR_REMOVE), delta=DELTA)
    assert agg.epsilon == pytest.approx(expected, rel=1e-3)
    each = next(a for a in claim.alternatives if a.label == "as run, each update")
    expected = epsilon(GaussianEventSpec(z / math.sqrt(3), 2, 1.0, Neighbouring.REPLACE),
                       delta=DELTA)
    assert each.epsilon == pytest.approx(expected, rel=1e-3)
    assert each.epsilon > agg.epsilon > claim.epsilon
    assert claim.to_dict()["alternatives"][0]["label"] == "as run, aggregate"


def test_deer_as_run_claim_uses_the_peer_singular_values():
    defense, model, _, schedule = _run("deer", rounds=2, noise_multiplier=1.5)
    claim = defense.claim(schedule)
    agg = next(a for a in claim.alternatives if a.label == "as run, aggregate")
    params = dict(model.named_parameters())
    assert [r.round for r in defense.releases] == [0, 1]
    assert len(defense.releases[0].factors) == len(lora_pairs(model))
    specs = [GaussianEventSpec(1.5 / r.sensitivity_factor, 1, 1.0, Neighbouring.ADD_OR_REMOVE)
             for r in defense.releases]
    assert agg.epsilon == pytest.approx(composed_epsilon(specs, delta=DELTA), rel=1e-9)
    assert params  # the model trained


def test_deer_needs_a_lora_model_and_example_counts():
    ds = _data()
    torch.manual_seed(0)
    plain = create_model("convnet", input_shape=ds.input_shape, num_classes=10,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std)
    clients = _clients(ds, 2)
    defense = DEFENSES.create("deer", target_epsilon=3.0)
    defense.prepare(_schedule(clients, 1))
    with pytest.raises(InvalidParameterError, match="vit-lora"):
        defense.setup_server(model=plain, public=None)
    with pytest.raises(InvalidParameterError, match="examples_per_client"):
        DEFENSES.create("deer", target_epsilon=3.0).prepare(FederationSchedule(2, 2, 1))


@pytest.mark.parametrize("params, match", [
    ({"clip_norm": 0}, "clip_norm"),
    ({"target_epsilon": -1}, "target_epsilon"),
    ({"local_steps": 0}, "local_steps"),
    ({"accounting_batch_size": 0}, "accounting_batch_size"),
    ({"temperature": 1}, "temperature"),
])
def test_bad_parameters_are_rejected(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        DEFENSES.create("deer", **params)


def test_deer_phase_a_privacy_does_not_improve_with_more_noise():
    """Phase 1 maps the noise through A^+ into B, so B grows with sigma; phase 2 maps A's
    noise through B^+, which shrinks it by sigma_max(B): the effective noise multiplier of
    phase 2 stays put as sigma grows. FFA-LoRA's epsilon falls as expected."""
    def as_run(name, sigma):
        defense, _, _, schedule = _run(name, rounds=2, noise_multiplier=sigma)
        claim = defense.claim(schedule)
        return next(a.epsilon for a in claim.alternatives if a.label == "as run, aggregate")

    deer_8, deer_30 = as_run("deer", 8.0), as_run("deer", 30.0)
    assert deer_30 > 0.8 * deer_8
    assert as_run("ffa-lora", 30.0) < 0.3 * as_run("ffa-lora", 8.0)
