"""One-shot FL estimate (Andrew et al. 2023, arXiv 2302.03098). Seeded; tolerances are
stated against the estimator's standard error."""

import json
import math

import numpy as np
import pytest
import torch

from audit.core.errors import InvalidParameterError
from audit.privacy.estimators import gdp_epsilon, one_shot_epsilon, random_unit_vectors

DELTA = 1e-5


@pytest.mark.parametrize("mu", [0.5, 1.5, 3.0])
def test_recovers_mu_from_gaussian_cosines(mu):
    """Canary cosines ~ N(mu s, s^2), null ~ N(0, s^2), 10^4 each: the standard error of the
    estimate is about sqrt(2/10^4 + mu^2/(2*10^4)) <= 0.026, so 0.08 absolute is > 3 s.e."""
    rng = np.random.default_rng(int(10 * mu))
    s = 0.01
    est = one_shot_epsilon(rng.normal(mu * s, s, 10_000), rng.normal(0.0, s, 10_000), delta=DELTA)
    assert est.details["mu"] == pytest.approx(mu, abs=0.08)
    assert est.details["mu"] == pytest.approx(mu, rel=0.05)
    assert est.epsilon == pytest.approx(gdp_epsilon(est.details["mu"], DELTA), rel=1e-12)
    assert est.nature == "estimate" and est.confidence is None and est.trials == 10_000
    assert est.details["std_ratio"] == pytest.approx(1.0, abs=0.05)
    json.dumps(est.to_dict())


def test_epsilon_matches_the_gaussian_mechanism_it_came_from():
    # canaries of a Gaussian mechanism with mu = 1 / sigma: the estimate is the mechanism's epsilon
    rng = np.random.default_rng(1)
    sigma = 0.8
    est = one_shot_epsilon(rng.normal(1.0, sigma, 20_000), rng.normal(0.0, sigma, 20_000), delta=DELTA)
    assert est.epsilon == pytest.approx(gdp_epsilon(1.0 / sigma, DELTA), rel=0.05)


def test_end_to_end_with_random_unit_canaries():
    """k canaries inserted into the sum of updates plus isotropic noise N(0, sigma^2 I_d).
    The canary cosine is about (1 + N(0, sigma^2 + (k-1)/d)) / norm and the null cosine
    N(0, sigma^2 + k/d) / norm, so mu is about 1 / sqrt(sigma^2 + k/d) = 0.894 here; the
    standard error with 1000 + 1000 cosines is about 0.045, tolerance 0.15."""
    gen = torch.Generator().manual_seed(0)
    k, dim, sigma = 1000, 4000, 1.0
    vecs = random_unit_vectors(2 * k, dim, generator=gen)
    canaries, nulls = vecs[:k], vecs[k:]
    final = canaries.sum(0) + sigma * torch.randn(dim, generator=gen, dtype=torch.float64)
    cos = torch.nn.functional.cosine_similarity
    est = one_shot_epsilon(cos(canaries, final[None], dim=1).numpy(), cos(nulls, final[None], dim=1).numpy(),
                           delta=DELTA)
    expected = 1.0 / math.sqrt(sigma**2 + k / dim)
    assert est.details["mu"] == pytest.approx(expected, abs=0.15)
    assert est.details["null_std"] == pytest.approx(1.0 / math.sqrt(dim), rel=0.1)  # null ~ N(0, 1/d)


def test_random_unit_vectors():
    a = random_unit_vectors(50, 300, generator=torch.Generator().manual_seed(3))
    b = random_unit_vectors(50, 300, generator=torch.Generator().manual_seed(3))
    assert a.shape == (50, 300) and a.dtype == torch.float64 and torch.equal(a, b)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(50, dtype=torch.float64))
    # nearly orthogonal: E[cos^2] = 1/d for independent uniform directions
    g = (a @ a.T)[~torch.eye(50, dtype=torch.bool)]
    assert float((g**2).mean()) == pytest.approx(1 / 300, rel=0.2)
    assert random_unit_vectors(2, 5, generator=torch.Generator(), dtype=torch.float32).dtype == torch.float32


def test_degenerate_spreads():
    # null with zero spread: the canaries' std is used
    est = one_shot_epsilon([0.1, 0.3], [0.0, 0.0], delta=DELTA)
    assert est.details["std_used"] == "canary"
    assert est.details["mu"] == pytest.approx(0.2 / np.std([0.1, 0.3], ddof=1))
    assert one_shot_epsilon([0.2, 0.2], [0.0, 0.0], delta=DELTA).epsilon == math.inf
    assert one_shot_epsilon([0.0, 0.0], [0.0, 0.0], delta=DELTA).epsilon == 0.0


def test_canaries_less_aligned_than_random_give_zero():
    rng = np.random.default_rng(5)
    est = one_shot_epsilon(rng.normal(-0.5, 1.0, 1000), rng.normal(0.0, 1.0, 1000), delta=DELTA)
    assert est.details["mu"] < 0 and est.epsilon == 0.0


@pytest.mark.parametrize(
    "call, shown",
    [
        (lambda: one_shot_epsilon([0.1, 0.2], [0.0, 0.1], delta=0.0), "Got 0.0"),
        (lambda: one_shot_epsilon([0.1, 0.2], [0.0, 0.1], delta=1.0), "Got 1.0"),
        (lambda: one_shot_epsilon([0.1], [0.0, 0.1], delta=DELTA), "shape (1,)"),
        (lambda: one_shot_epsilon([0.1, 0.2], [0.0, float("nan")], delta=DELTA), "NaN"),
        (lambda: random_unit_vectors(0, 5, generator=torch.Generator()), "Got 0"),
        (lambda: random_unit_vectors(3, -2, generator=torch.Generator()), "Got -2"),
    ],
)
def test_bad_inputs_name_the_value(call, shown):
    with pytest.raises(InvalidParameterError, match="parameter of") as err:
        call()
    assert shown in str(err.value)
