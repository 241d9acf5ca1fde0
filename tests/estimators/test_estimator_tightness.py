"""Estimators on a correct Gaussian mechanism (white-box: the score is the output), with
sigma from the exact Gaussian-mechanism formula so the true epsilon equals the claim.

Lower bounds must stay below the truth (they fail with probability <= alpha = 0.05 each;
seeded here) and come reasonably close; estimates must land near the truth.
"""

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from audit.core.errors import InvalidParameterError
from audit.privacy.estimators import (
    best_one_run_epsilon,
    clopper_pearson_epsilon,
    gdp_delta,
    gdp_epsilon,
    gdp_fit_epsilon,
    one_run_epsilon,
    one_shot_epsilon,
)

DELTA = 1e-5


def exact_delta(eps, sigma):
    """delta(eps) of the Gaussian mechanism with sensitivity 1 and std sigma."""
    mu = 1.0 / sigma
    return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2)


def sigma_for(eps):
    return brentq(lambda s: exact_delta(eps, s) - DELTA, 0.05, 100.0)


def samples(eps, n, seed, *, sigma_factor=1.0):
    rng = np.random.default_rng(seed)
    s = sigma_for(eps) * sigma_factor
    return rng.normal(1.0, s, n), rng.normal(0.0, s, n)


@pytest.mark.parametrize("mu, eps", [(0.5, 1.0), (1.0, 3.0), (2.0, 0.5)])
def test_gdp_delta_is_the_gaussian_mechanism(mu, eps):
    assert gdp_delta(eps, mu) == pytest.approx(exact_delta(eps, 1 / mu), rel=1e-9)
    assert gdp_delta(gdp_epsilon(mu, DELTA), mu) == pytest.approx(DELTA, rel=1e-6)


def test_gdp_no_overflow():
    assert gdp_delta(200.0, 20.0) >= 0 and math.isfinite(gdp_epsilon(20.0, 1e-5))
    assert gdp_epsilon(0.0, 1e-5) == 0.0


@pytest.mark.parametrize("eps", [1.0, 2.0, 4.0])
def test_clopper_pearson_is_a_valid_and_useful_lower_bound(eps):
    w, wo = samples(eps, 100_000, seed=int(eps))
    est = clopper_pearson_epsilon(w, wo, delta=DELTA)
    assert est.nature == "lower-bound" and est.confidence == 0.95
    assert 0.4 * eps <= est.epsilon <= eps


def test_clopper_pearson_flags_noise_four_times_too_small():
    w, wo = samples(1.0, 100_000, seed=0, sigma_factor=0.25)
    assert clopper_pearson_epsilon(w, wo, delta=DELTA).epsilon > 2.0


@pytest.mark.parametrize("eps", [1.0, 2.0, 4.0])
def test_gdp_fit_is_within_10_percent(eps):
    w, wo = samples(eps, 100_000, seed=10 + int(eps))
    assert gdp_fit_epsilon(w, wo, delta=DELTA).epsilon == pytest.approx(eps, rel=0.10)


def test_one_run_perfect_guesses_grow_with_guesses_and_random_is_zero():
    bounds = [one_run_epsilon(r, r, canaries=1000, delta=0.0).epsilon for r in (10, 100, 500)]
    assert bounds == sorted(bounds) and bounds[0] > 0
    assert one_run_epsilon(50, 100, canaries=1000).epsilon == 0.0
    monotone = [one_run_epsilon(v, 100, canaries=1000).epsilon for v in (60, 70, 80, 90)]
    assert monotone == sorted(monotone)


def test_one_run_on_a_gaussian_mechanism_stays_below_truth():
    rng = np.random.default_rng(3)
    eps = 4.0
    inc = rng.random(10_000) < 0.5
    scores = rng.normal(inc.astype(float), sigma_for(eps))
    est = best_one_run_epsilon(scores, inc, delta=DELTA, ks=(100, 300, 1000))
    assert 0 < est.epsilon <= eps


def test_one_shot_recovers_mu():
    rng = np.random.default_rng(0)
    s, mu = 0.01, 1.5
    est = one_shot_epsilon(rng.normal(mu * s, s, 10_000), rng.normal(0, s, 10_000), delta=DELTA)
    assert est.details["mu"] == pytest.approx(mu, rel=0.05)
    assert est.epsilon == pytest.approx(gdp_epsilon(est.details["mu"], DELTA))
    assert est.nature == "estimate" and est.confidence is None


@pytest.mark.parametrize(
    "call",
    [
        lambda: clopper_pearson_epsilon([1.0], [0.0, 1.0], delta=DELTA),
        lambda: clopper_pearson_epsilon([1.0, float("nan")], [0.0, 1.0], delta=DELTA),
        lambda: clopper_pearson_epsilon([1.0, 2.0], [0.0, 1.0], delta=1.5),
        lambda: one_run_epsilon(5, 4, canaries=10),
        lambda: one_run_epsilon(1, 1, canaries=10, beta=0.0),
        lambda: one_shot_epsilon([0.1, 0.2], [0.0, 0.1], delta=0.0),
    ],
)
def test_bad_inputs(call):
    with pytest.raises(InvalidParameterError):
        call()
