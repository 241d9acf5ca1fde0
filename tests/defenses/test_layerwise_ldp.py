"""Layer-wise local DP (``fedre``, ``uniform-ldp``): budgets, accounting and the mechanism.

Statistical checks are seeded (deterministic in CI); each states its false-positive rate.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from audit.privacy.accounting.accountants import (
    GaussianEventSpec,
    Neighbouring,
    calibrate_noise_multiplier,
    composed_epsilon,
    epsilon,
)
from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.privacy.testing.mechanism_tester import test_mechanism
from audit.core.updates import ClientData, ModelUpdate, UpdateKind
from defenses.fedre import effective_number, perturbation_aware_weights
from defenses.layerwise_gaussian import clip_and_noise, layer_budgets

DELTA = 1e-5


def _spec(z: float, rounds: int) -> GaussianEventSpec:
    return GaussianEventSpec(z, rounds, 1.0, Neighbouring.REPLACE)


def _tiny_segmenter() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ELU(), nn.Conv2d(4, 4, 3, padding=1),
                         nn.ELU(), nn.Conv2d(4, 2, 1))


def _public(n: int = 6, size: int = 8) -> ClientData:
    g = torch.Generator().manual_seed(1)
    images = torch.rand(n, 3, size, size, generator=g)
    masks = torch.zeros(n, size, size, dtype=torch.long)
    masks[:, 2:5, 2:6] = 1
    psi = torch.zeros(n, size, size, dtype=torch.bool)
    psi[:, 4:7, 1:5] = True
    return ClientData(images, masks, psi)


def _prepared(name: str, *, rounds: int = 3, eps: float = 2.0, **params):
    defense = DEFENSES.create(name, target_epsilon=eps, delta=DELTA, **params)
    schedule = FederationSchedule(num_clients=4, clients_per_round=4, rounds=rounds)
    defense.prepare(schedule)
    model = _tiny_segmenter()
    defense.setup_server(model=model, public=_public())
    return defense, schedule, model


@pytest.mark.parametrize("name", ["fedre", "uniform-ldp"])
def test_per_layer_budgets_compose_to_the_claimed_total(name):
    defense, schedule, _ = _prepared(name, rounds=3, eps=2.0)
    claim = defense.claim(schedule)
    # the claim's total is the accountant's composition of the per-layer events ...
    specs = [_spec(p["noise_multiplier"], schedule.rounds) for p in claim.parts]
    assert composed_epsilon(specs, delta=DELTA) == pytest.approx(claim.epsilon, rel=1e-9)
    # ... and that composition spends exactly the calibrated target (PLD tolerance 1%)
    assert claim.epsilon == pytest.approx(2.0, rel=0.01) and claim.epsilon <= 2.0 + 1e-9
    assert sum(p["share"] for p in claim.parts) == pytest.approx(1.0)
    assert all(p["epsilon"] < claim.epsilon for p in claim.parts)
    assert len(claim.parts) == 3 and claim.trust_model.value == "local"


def test_sigma_per_layer_matches_the_accountants_gaussian_calibration():
    defense, schedule, _ = _prepared("fedre", rounds=2, eps=4.0)
    claim = defense.claim(schedule)
    for part, budget in zip(claim.parts, defense.budgets):
        # the layer's own epsilon, recalibrated by the accountant, gives back its z_l
        z = calibrate_noise_multiplier(_spec(1.0, schedule.rounds), target_epsilon=part["epsilon"],
                                       delta=DELTA)
        assert z == pytest.approx(budget.noise_multiplier, rel=2e-3)
        assert part["epsilon"] == pytest.approx(epsilon(_spec(budget.noise_multiplier, 2),
                                                        delta=DELTA), rel=1e-9)
        assert budget.noise_std == pytest.approx(budget.noise_multiplier * budget.clip_norm)


def test_noise_actually_added_has_each_layers_std():
    defense, _, model = _prepared("fedre", rounds=1, eps=8.0)
    zeros = {n: torch.zeros(p.shape) for n, p in model.named_parameters()}
    g = torch.Generator().manual_seed(3)
    draws = [clip_and_noise(zeros, defense.budgets, generator=g)[0] for _ in range(400)]
    for b in defense.budgets:
        x = torch.cat([torch.cat([d[p].reshape(-1) for p in b.parameters]) for d in draws]).double()
        # n >= 400 * 8 draws: the sample std is within 10% of sigma_l with probability
        # > 1 - 1e-6 (chi-square, n - 1 >= 3199 degrees of freedom)
        assert x.std().item() == pytest.approx(b.noise_std, rel=0.1), b.layer


@settings(max_examples=40, deadline=None)
@given(raw=st.lists(st.floats(0.01, 10.0), min_size=1, max_size=6),
       z=st.floats(0.3, 20.0), clip=st.floats(0.01, 10.0),
       mode=st.sampled_from(["equal", "dimension"]))
def test_shares_split_one_gaussian_exactly(raw, z, clip, mode):
    layers = {f"l{i}": [f"l{i}.w"] for i in range(len(raw))}
    shares = {f"l{i}": w / sum(raw) for i, w in enumerate(raw)}
    numels = {f"l{i}.w": 1 + 3 * i for i in range(len(raw))}
    budgets = layer_budgets(layers, shares, noise_multiplier=z, clip_norm=clip, numels=numels,
                            layer_clip=mode)
    assert sum(1 / b.noise_multiplier ** 2 for b in budgets) == pytest.approx(1 / z ** 2)
    assert all(b.noise_multiplier >= z * (1 - 1e-12) for b in budgets)
    # per-layer clip norms never let the whole update exceed the total clip norm
    assert math.sqrt(sum(b.clip_norm ** 2 for b in budgets)) == pytest.approx(clip)


@settings(max_examples=40, deadline=None)
@given(scale=st.floats(1e-3, 1e3), seed=st.integers(0, 2**31 - 1))
def test_each_layer_is_clipped_to_its_norm_before_the_noise(scale, seed):
    defense, _, model = _prepared("uniform-ldp", rounds=1, eps=8.0)
    g = torch.Generator().manual_seed(seed)
    update = {n: scale * torch.randn(p.shape, generator=g) for n, p in model.named_parameters()}
    zeros = {n: torch.zeros_like(t) for n, t in update.items()}
    noisy, norms = clip_and_noise(update, defense.budgets, generator=torch.Generator().manual_seed(7))
    noise, _ = clip_and_noise(zeros, defense.budgets, generator=torch.Generator().manual_seed(7))
    for b in defense.budgets:  # same generator state: the difference is the clipped update
        part = torch.cat([(noisy[p] - noise[p]).reshape(-1) for p in b.parameters])
        raw = torch.cat([update[p].reshape(-1) for p in b.parameters])
        assert part.norm() <= b.clip_norm * (1 + 1e-5)
        assert norms[b.layer] == pytest.approx(raw.norm().item(), rel=1e-5)
        assert torch.allclose(part, raw * min(1.0, b.clip_norm / raw.norm().item()), atol=1e-5)


class _LayerwiseRelease:
    """One client release of a 3-layer update through ``clip_and_noise``; the tester's
    mechanism. ``bug='full-budget-per-layer'`` gives every layer the whole budget."""

    def __init__(self, eps: float, *, bug: str | None = None) -> None:
        self.epsilon, self.delta = eps, DELTA
        layers = {f"l{i}": [f"l{i}.w"] for i in range(3)}
        z = calibrate_noise_multiplier(_spec(1.0, 1), target_epsilon=eps, delta=DELTA)
        shares = {"l0": 0.6, "l1": 0.3, "l2": 0.1}
        self.budgets = layer_budgets(layers, shares, noise_multiplier=z, clip_norm=1.0,
                                     numels={f"l{i}.w": 2 for i in range(3)})
        if bug == "full-budget-per-layer":
            self.budgets = [type(b)(b.layer, b.parameters, b.share, z, b.clip_norm)
                            for b in self.budgets]

    def _layers(self, flat):
        return {f"l{i}.w": flat[..., 2 * i:2 * i + 2].double() for i in range(3)}

    def __call__(self, data, *, generator, batch=1):
        # the clipped release without noise: same generator state, minus the noise alone
        a, _ = clip_and_noise(self._layers(data), self.budgets,
                              generator=torch.Generator().manual_seed(0))
        b, _ = clip_and_noise(self._layers(torch.zeros_like(data)), self.budgets,
                              generator=torch.Generator().manual_seed(0))
        clipped = torch.cat([a[k] - b[k] for k in a])
        # ``batch`` noise draws at once: zeros are left alone by clipping
        noise, _ = clip_and_noise(self._layers(torch.zeros(batch, data.numel())), self.budgets,
                                  generator=generator)
        return clipped + torch.cat([noise[k] for k in noise], dim=1)


def _worst_pair():
    """Replace-one neighbours at distance 2 C_l in every layer (each layer at its clip)."""
    c = 1.0 / math.sqrt(3)
    data = torch.tensor([c, 0.0] * 3)
    return data, -data


def test_layerwise_mechanism_passes_the_tester_and_a_wrong_composition_is_caught():
    """False-positive rate: a correct mechanism is flagged with probability <= 5%
    (Clopper-Pearson at 95%); seeded."""
    data, neighbour = _worst_pair()
    ok = test_mechanism(_LayerwiseRelease(1.0), data, neighbour, samples=300_000, seed=0)
    assert ok.verdict == "PASS", ok.to_dict()
    bad = test_mechanism(_LayerwiseRelease(1.0, bug="full-budget-per-layer"), data, neighbour,
                         samples=300_000, seed=0)
    assert bad.verdict == "VIOLATION", bad.to_dict()


def test_fedre_gives_less_budget_to_layers_with_more_psi():
    defense, _, _ = _prepared("fedre", rounds=1, eps=4.0, floor=0.01)
    shares = {b.layer: b.share for b in defense.budgets}
    order = sorted(defense.scores, key=defense.scores.get)
    assert [shares[k] for k in order] == sorted(shares.values(), reverse=True)


def test_perturbation_aware_aggregation_down_weights_the_noisier_observation():
    defense, _, model = _prepared("fedre", rounds=1, eps=4.0, temperature=0.05,
                                  min_effective=0.0)
    names = [n for n, _ in model.named_parameters()]
    g = torch.Generator().manual_seed(0)
    clean = {n: 1e-3 * torch.randn(p.shape, generator=g) for n, p in model.named_parameters()}
    noisy = {n: t + 5.0 * torch.randn(t.shape, generator=g) for n, t in clean.items()}
    obs = [ModelUpdate(UpdateKind.GRADIENT, clean, client_id=0, num_examples=1),
           ModelUpdate(UpdateKind.GRADIENT, noisy, client_id=1, num_examples=1)]
    agg = defense.server_side(obs, generator=g)
    w = defense.last_weights
    assert w[0] > 0.9 and sum(w) == pytest.approx(1.0)
    expected = {n: w[0] * clean[n] + w[1] * noisy[n] for n in names}
    assert all(torch.allclose(agg.tensors[n], expected[n], atol=1e-6) for n in names)
    mean = DEFENSES.create("fedre", target_epsilon=4.0, aggregation="mean")
    mean.prepare(FederationSchedule(2, 2, 1))
    mean.setup_server(model=model, public=_public())
    agg = mean.server_side(obs, generator=g)
    assert all(torch.allclose(agg.tensors[n], (clean[n] + noisy[n]) / 2, atol=1e-6) for n in names)


@pytest.mark.parametrize("params, match", [
    ({"target_epsilon": 0}, "target_epsilon"),
    ({"layer_clip": "median"}, "layer_clip"),
    ({"aggregation": "trimmed"}, "aggregation"),
    ({"public_size": 0}, "public_size"),
    ({"temperature": -1}, "temperature"),
    ({"min_effective": 1.5}, "min_effective"),
    ({"noise_multiplier": 1.0}, "noise_multiplier"),
    ({"base": "fedsgd", "local_steps": 3}, "local_steps"),
])
def test_bad_parameters_are_rejected(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        DEFENSES.create("fedre", **params)


def test_fedre_needs_psi_masks():
    defense = DEFENSES.create("fedre", target_epsilon=1.0)
    defense.prepare(FederationSchedule(2, 2, 1))
    public = _public()
    with pytest.raises(InvalidParameterError, match="PSI masks"):
        defense.setup_server(model=_tiny_segmenter(),
                             public=ClientData(public.images, public.labels))


def test_default_aggregation_keeps_three_quarters_of_the_clients_effective():
    defense, _, model = _prepared("fedre", rounds=1, eps=4.0, temperature=0.05)
    g = torch.Generator().manual_seed(0)
    clean = {n: 1e-3 * torch.randn(p.shape, generator=g) for n, p in model.named_parameters()}
    noisy = {n: t + 5.0 * torch.randn(t.shape, generator=g) for n, t in clean.items()}
    obs = [ModelUpdate(UpdateKind.GRADIENT, clean, client_id=0, num_examples=1),
           ModelUpdate(UpdateKind.GRADIENT, noisy, client_id=1, num_examples=1)]
    defense.server_side(obs, generator=g)
    w = torch.tensor(defense.last_weights)
    # the cleaner one still leads, but the temperature rose until 1/sum(w^2) = 0.75 * 2
    assert w[0] > w[1]
    assert effective_number(w) == pytest.approx(1.5, rel=1e-4)


_losses = st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(losses=_losses, temperature=st.floats(1e-3, 10), min_effective=st.floats(0, 1))
def test_perturbation_aware_weights_keep_the_effective_number_and_the_order(
        losses, temperature, min_effective):
    x = torch.tensor(losses, dtype=torch.float64)
    w = perturbation_aware_weights(x, temperature=temperature, min_effective=min_effective)
    assert float(w.sum()) == pytest.approx(1.0) and bool((w >= 0).all())
    assert effective_number(w) >= min_effective * len(losses) * (1 - 1e-6)
    order = torch.argsort(x)
    assert bool((w[order][1:] <= w[order][:-1] + 1e-12).all())  # lower loss, higher weight
    plain = torch.softmax(-x / temperature, dim=0)
    if effective_number(plain) >= min_effective * len(losses):
        assert torch.allclose(w, plain, atol=1e-9)  # the temperature was enough as it is


def test_perturbation_aware_weights_edge_cases():
    eq = perturbation_aware_weights(torch.full((5,), 3.0, dtype=torch.float64), temperature=0.1,
                                    min_effective=1.0)
    assert torch.allclose(eq, torch.full((5,), 0.2, dtype=torch.float64))
    inf = perturbation_aware_weights(torch.tensor([1.0, math.inf, 2.0], dtype=torch.float64),
                                     temperature=0.1, min_effective=1.0)
    assert inf[1] == 0 and torch.allclose(inf, torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64),
                                          atol=1e-4)
    none = perturbation_aware_weights(torch.full((4,), math.inf, dtype=torch.float64),
                                      temperature=0.1, min_effective=0.5)
    assert torch.allclose(none, torch.full((4,), 0.25, dtype=torch.float64))
