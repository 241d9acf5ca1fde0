"""Clopper-Pearson distinguishing-test lower bound (Jagielski et al. 2020; Nasr et al. 2021).

White-box setting: the score is the Gaussian mechanism's output itself (sensitivity 1), with
sigma from the exact Gaussian-mechanism formula so the true epsilon at delta = 1e-5 equals the
claim. A lower bound at 95% exceeds the truth with probability <= 5% per run (in practice far
less: Bonferroni halves and the threshold choice make it conservative); all runs are seeded,
so the outcomes below are fixed.
"""

import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from audit.core.errors import InvalidParameterError
from audit.privacy.estimators import clopper_pearson_epsilon, clopper_pearson_upper, gdp_epsilon

DELTA = 1e-5


def exact_delta(eps, sigma):
    mu = 1.0 / sigma
    return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2)


def sigma_for(eps):
    return brentq(lambda s: exact_delta(eps, s) - DELTA, 0.05, 100.0, xtol=1e-12)


def gaussian_scores(eps, n, seed, *, sigma_factor=1.0):
    rng = np.random.default_rng(seed)
    s = sigma_for(eps) * sigma_factor
    return rng.normal(1.0, s, n), rng.normal(0.0, s, n)


def test_upper_bound_closed_forms_and_coverage():
    n, alpha = 200, 0.05
    assert clopper_pearson_upper(0, n, alpha) == pytest.approx(1 - alpha ** (1 / n), rel=1e-10)
    assert clopper_pearson_upper(n, n, alpha) == 1.0
    ub = clopper_pearson_upper(np.arange(n + 1), n, alpha)
    assert np.all(np.diff(ub) > 0) and np.all(ub >= np.arange(n + 1) / n)
    # coverage: P[p <= ub] >= 1 - alpha; 4000 draws, a 95% interval would fail this check
    # with probability < 1e-6 (binomial tail), so a failure means a wrong interval
    rng = np.random.default_rng(0)
    for p in (0.01, 0.2, 0.7):
        k = rng.binomial(n, p, size=4000)
        assert np.mean(clopper_pearson_upper(k, n, alpha) >= p) >= 0.93


@pytest.mark.parametrize("eps_claim", [1.0, 2.0, 4.0])
def test_bound_on_a_correct_gaussian_mechanism_is_valid_and_reasonably_tight(eps_claim):
    """10^5 trials per side (half held out). The best achievable bound with 5*10^4 held-out
    trials per side (exact expected counts, optimal threshold) is about 0.53, 1.18, 2.41 for
    eps 1, 2, 4, so 0.5 eps_claim is near the ceiling at eps = 1. These four seeds see
    0.51-0.58, 1.02-1.27, 2.06-2.43; 20 other seeds: mean 0.53, 1.19, 2.39, min 0.46, 0.98,
    2.05. We require every run <= the claim, every run >= 0.45 eps_claim and the mean of the
    four >= 0.5 eps_claim."""
    bounds = []
    for seed in range(4):
        w, wo = gaussian_scores(eps_claim, 100_000, seed=100 * seed + int(eps_claim))
        est = clopper_pearson_epsilon(w, wo, delta=DELTA, seed=seed)
        assert est.nature == "lower-bound" and est.confidence == 0.95 and est.trials == 200_000
        assert est.details["threshold_from"] == "gaussian"  # Gaussian scores pass the fit check
        bounds.append(est.epsilon)
    assert max(bounds) <= eps_claim  # never above the truth (each run: probability <= 5%)
    assert min(bounds) >= 0.45 * eps_claim and np.mean(bounds) >= 0.5 * eps_claim


def test_auto_rule_falls_back_to_counts_when_scores_are_not_gaussian():
    """Shifted exponential scores (true epsilon infinite: "with" is never below 1) and
    Laplace scores (true epsilon 1): a normal fit picks a poor threshold; "auto" notices the
    fit is off and uses the empirical counts."""
    rng = np.random.default_rng(12)
    w, wo = rng.exponential(1.0, 50_000) + 1.0, rng.exponential(1.0, 50_000)
    auto = clopper_pearson_epsilon(w, wo, delta=DELTA)
    assert auto.details["threshold_from"] == "empirical" and auto.epsilon > 8.0
    assert clopper_pearson_epsilon(w, wo, delta=DELTA, threshold_rule="gaussian").epsilon < 1.5
    rng = np.random.default_rng(13)
    w, wo = rng.laplace(1.0, 1.0, 50_000), rng.laplace(0.0, 1.0, 50_000)
    auto = clopper_pearson_epsilon(w, wo, delta=0.0)
    assert auto.details["threshold_from"] == "empirical" and 0.9 < auto.epsilon <= 1.0
    assert clopper_pearson_epsilon(w, wo, delta=0.0, threshold_rule="gaussian").epsilon < 0.85


def test_validity_over_many_seeds_on_randomized_response():
    """Binary randomized response with eps = 1 (delta = 0): outputs are bits, the best test
    is "output = 1", and the bound comes near the truth. At alpha = 0.2 the guarantee allows
    up to 20% of runs above eps = 1; over 300 seeded runs we require <= 27% (20% plus three
    binomial standard deviations: a valid bound fails this with probability < 0.3%). The
    seeded runs see 18/300 = 6% above, median bound 0.82."""
    eps, n, runs = 1.0, 400, 300
    p = math.exp(eps) / (1 + math.exp(eps))
    rng = np.random.default_rng(7)
    above, bounds = 0, []
    for seed in range(runs):
        w, wo = rng.random(n) < p, rng.random(n) < 1 - p
        b = clopper_pearson_epsilon(w.astype(float), wo.astype(float), delta=0.0, alpha=0.2, seed=seed).epsilon
        above += b > eps
        bounds.append(b)
    assert above <= 0.27 * runs
    assert np.median(bounds) > 0.3  # and it does see something


def test_noise_four_times_too_small_is_flagged():
    eps_claim = 1.0
    w, wo = gaussian_scores(eps_claim, 100_000, seed=5, sigma_factor=0.25)
    est = clopper_pearson_epsilon(w, wo, delta=DELTA)
    true_eps = gdp_epsilon(4.0 / sigma_for(eps_claim), DELTA)  # the buggy mechanism's real epsilon
    assert 2.0 * eps_claim < est.epsilon <= true_eps


def test_direction_is_found_either_way():
    w, wo = gaussian_scores(2.0, 50_000, seed=11)
    up = clopper_pearson_epsilon(w, wo, delta=DELTA, seed=3)
    down = clopper_pearson_epsilon(-w, -wo, delta=DELTA, seed=3)
    assert up.details["direction"] == "greater" and down.details["direction"] == "less"
    assert down.epsilon == pytest.approx(up.epsilon, rel=1e-9)
    assert down.details["threshold"] == pytest.approx(-up.details["threshold"])


def test_same_distribution_gives_zero():
    rng = np.random.default_rng(2)
    for seed in range(3):
        est = clopper_pearson_epsilon(rng.normal(size=20_000), rng.normal(size=20_000), delta=DELTA, seed=seed)
        assert est.epsilon == 0.0


def test_perfect_separation_is_bounded_by_the_sample_size():
    # every test is right: the bound is limited only by the held-out counts (FP = FN = 0)
    w, wo = np.full(2000, 1.0), np.zeros(2000)
    est = clopper_pearson_epsilon(w, wo, delta=0.0)
    cap = math.log((1 - clopper_pearson_upper(0, 1000, 0.025)) / clopper_pearson_upper(0, 1000, 0.025))
    assert est.epsilon == pytest.approx(cap, rel=1e-9)
    assert est.details["false_positives"] == 0 and est.details["false_negatives"] == 0


@pytest.mark.parametrize("rule", ["empirical", "gaussian"])
def test_explicit_rules_are_valid_too(rule):
    w, wo = gaussian_scores(2.0, 100_000, seed=21)
    est = clopper_pearson_epsilon(w, wo, delta=DELTA, threshold_rule=rule)
    assert 0.9 <= est.epsilon <= 2.0 and est.details["threshold_from"] == rule


def test_deterministic_and_json_ready():
    w, wo = gaussian_scores(1.0, 20_000, seed=4)
    a = clopper_pearson_epsilon(w, wo, delta=DELTA, seed=9)
    b = clopper_pearson_epsilon(w, wo, delta=DELTA, seed=9)
    assert a.epsilon == b.epsilon and a.details == b.details
    d = json.loads(json.dumps(a.to_dict()))
    assert d["estimator"] == "clopper-pearson" and d["details"]["heldout_with"] == 10_000


def test_a_million_scores_per_side_is_fast():
    rng = np.random.default_rng(0)
    w, wo = rng.normal(1.0, 1.0, 1_000_000), rng.normal(0.0, 1.0, 1_000_000)
    est = clopper_pearson_epsilon(w, wo, delta=DELTA)
    assert est.compute_s < 3.0  # about 0.5 s on one core
    assert 2.5 < est.epsilon <= gdp_epsilon(1.0, DELTA)


@pytest.mark.parametrize(
    "kwargs, shown",
    [
        ({"scores_with": [1.0]}, "shape (1,)"),
        ({"scores_with": []}, "shape (0,)"),
        ({"scores_with": [1.0, float("nan")]}, "1 NaN or infinite"),
        ({"scores_without": [[0.0, 1.0], [2.0, 3.0]]}, "shape (2, 2)"),
        ({"scores_without": ["a", "b"]}, "'a'"),
        ({"delta": 1.0}, "1.0"),
        ({"delta": -0.1}, "-0.1"),
        ({"alpha": 0.0}, "0.0"),
        ({"alpha": 1.5}, "1.5"),
        ({"selection_fraction": 1.0}, "1.0"),
        ({"threshold_rule": "best"}, "'best'"),
        ({"seed": -1}, "-1"),
    ],
)
def test_bad_inputs_name_the_value(kwargs, shown):
    args = {"scores_with": [1.0, 2.0, 3.0], "scores_without": [0.0, 1.0, 2.0], "delta": DELTA, **kwargs}
    with pytest.raises(InvalidParameterError, match="parameter of clopper_pearson_epsilon") as err:
        clopper_pearson_epsilon(args.pop("scores_with"), args.pop("scores_without"), **args)
    assert shown in str(err.value)
