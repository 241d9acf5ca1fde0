"""GDP fit of the empirical trade-off curve (after Nasr et al. 2023, "Tight auditing").

White-box Gaussian mechanism (sensitivity 1, sigma from the exact formula so the true
epsilon at delta = 1e-5 is the claim). The mechanism is exactly (1/sigma)-GDP, so the fit's
target is the claim itself. Seeded; tolerances are several standard errors wide.
"""

import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from audit.core.errors import InvalidParameterError
from audit.privacy.estimators import gdp_epsilon, gdp_fit_epsilon, gdp_tradeoff
from audit.privacy.estimators.gdp_fit import tradeoff_points

DELTA = 1e-5


def sigma_for(eps):
    def delta(s):
        return norm.cdf(-eps * s + 1 / (2 * s)) - math.exp(eps) * norm.cdf(-eps * s - 1 / (2 * s))
    return brentq(lambda s: delta(s) - DELTA, 0.05, 100.0, xtol=1e-12)


def gaussian_scores(eps, n, seed, *, sigma_factor=1.0):
    rng = np.random.default_rng(seed)
    s = sigma_for(eps) * sigma_factor
    return rng.normal(1.0, s, n), rng.normal(0.0, s, n)


@pytest.mark.parametrize("eps_claim", [1.0, 2.0, 4.0])
def test_within_ten_percent_of_the_claim(eps_claim):
    """10^5 samples per side; the seeds here land within 3% (0.97-1.01, 2.00-2.03,
    3.96-4.00); the standard error of mu is about 0.01, i.e. 2-4% of epsilon."""
    for seed in range(3):
        w, wo = gaussian_scores(eps_claim, 100_000, seed=100 * seed + int(eps_claim))
        est = gdp_fit_epsilon(w, wo, delta=DELTA)
        assert est.epsilon == pytest.approx(eps_claim, rel=0.10)
        assert est.details["mu"] == pytest.approx(1.0 / sigma_for(eps_claim), rel=0.06)
        assert est.nature == "estimate" and est.confidence is None and est.trials == 200_000
        assert est.details["fit"] == "median" and est.details["thresholds_used"] > 100_000


def test_noise_four_times_too_small_is_visible():
    w, wo = gaussian_scores(1.0, 100_000, seed=3, sigma_factor=0.25)
    est = gdp_fit_epsilon(w, wo, delta=DELTA)
    assert est.epsilon == pytest.approx(gdp_epsilon(4.0 / sigma_for(1.0), DELTA), rel=0.1)
    assert est.epsilon > 4.0


def test_invariant_to_affine_maps_and_direction():
    w, wo = gaussian_scores(2.0, 20_000, seed=8)
    base = gdp_fit_epsilon(w, wo, delta=DELTA)
    scaled = gdp_fit_epsilon(3.0 * w - 7.0, 3.0 * wo - 7.0, delta=DELTA)
    flipped = gdp_fit_epsilon(-w, -wo, delta=DELTA)
    assert scaled.details["mu"] == pytest.approx(base.details["mu"], rel=1e-9)
    assert flipped.details["direction"] == "less" and base.details["direction"] == "greater"
    assert flipped.details["mu"] == pytest.approx(base.details["mu"], rel=0.01)
    assert flipped.details["mu_q25"] <= flipped.details["mu"] <= flipped.details["mu_q75"]


def test_empirical_curve_follows_the_gdp_curve():
    w, wo = gaussian_scores(2.0, 100_000, seed=9)
    fpr, fnr = tradeoff_points(w, wo)
    mu = 1.0 / sigma_for(2.0)
    inside = (fpr > 0.01) & (fpr < 0.99)
    assert np.max(np.abs(fnr[inside] - gdp_tradeoff(fpr[inside], mu))) < 0.01


def test_same_distribution_gives_about_zero():
    rng = np.random.default_rng(4)
    est = gdp_fit_epsilon(rng.normal(size=50_000), rng.normal(size=50_000), delta=DELTA)
    assert est.details["mu"] < 0.05 and est.epsilon < 0.2


def test_non_gaussian_curve_shows_a_wide_spread():
    # Laplace scores: the trade-off curve is not GDP-shaped, mu(t) varies with t
    rng = np.random.default_rng(6)
    lap = gdp_fit_epsilon(rng.laplace(1.0, 1.0, 50_000), rng.laplace(0.0, 1.0, 50_000), delta=DELTA)
    gau = gdp_fit_epsilon(rng.normal(1.0, 1.4, 50_000), rng.normal(0.0, 1.4, 50_000), delta=DELTA)
    spread = [d.details["mu_q75"] - d.details["mu_q25"] for d in (lap, gau)]
    assert spread[0] > 3 * spread[1]


def test_degenerate_samples():
    est = gdp_fit_epsilon([2.0, 3.0], [0.0, 1.0], delta=DELTA)
    assert est.details["fit"] == "separated" and est.epsilon == math.inf
    assert gdp_fit_epsilon([0.0, 1.0], [2.0, 3.0], delta=DELTA).details["direction"] == "less"
    json.dumps(est.to_dict())  # Python's json writes inf as Infinity


def test_a_million_scores_per_side_is_fast():
    rng = np.random.default_rng(0)
    est = gdp_fit_epsilon(rng.normal(1.0, 1.0, 1_000_000), rng.normal(0.0, 1.0, 1_000_000), delta=DELTA)
    assert est.compute_s < 5.0  # about 1 s on one core
    assert est.details["mu"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    "kwargs, shown",
    [
        ({"delta": 0.0}, "Got 0.0"),
        ({"delta": 1.0}, "Got 1.0"),
        ({"scores_with": [1.0]}, "shape (1,)"),
        ({"scores_without": [0.0, float("-inf")]}, "infinite"),
        ({"scores_with": None}, "None"),
    ],
)
def test_bad_inputs_name_the_value(kwargs, shown):
    args = {"scores_with": [1.0, 2.0, 3.0], "scores_without": [0.0, 1.0, 2.0], "delta": DELTA, **kwargs}
    with pytest.raises(InvalidParameterError, match="parameter of gdp_fit_epsilon") as err:
        gdp_fit_epsilon(args.pop("scores_with"), args.pop("scores_without"), **args)
    assert shown in str(err.value)
