"""f-DP one-run auditing (Mahloujifar, Melis, Chaudhuri 2025) and the Gaussian aggregate of
canary signals: validity on a correct Gaussian mechanism (seeded, so deterministic), the
rejection's monotonicity, and the power ceilings read from finished estimates."""

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binom, norm

from audit.privacy.estimators import best_one_run_epsilon, gdp_epsilon
from audit.privacy.estimators.fdp_one_run import best_fdp_one_run_epsilon, fdp_one_run_epsilon, fdp_one_run_rejects
from audit.privacy.estimators.gaussian_aggregate import gaussian_aggregate_epsilon
from audit.privacy.estimators.power import estimate_ceiling, one_run_ceiling

DELTA = 1e-5


def _sigma_for(eps):
    def gap(s):
        mu = 1 / s
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - DELTA
    return brentq(gap, 0.05, 100)


def _gaussian_canaries(eps, m, seed):
    rng = np.random.default_rng(seed)
    inc = rng.random(m) < 0.5
    return rng.normal(inc.astype(float), _sigma_for(eps)), inc


def test_fdp_rejection_is_monotone_in_mu_and_needs_right_guesses():
    assert fdp_one_run_rejects(1000, 100, 95, 0.5, 0.05)
    assert not fdp_one_run_rejects(1000, 100, 95, 5.0, 0.05)
    assert not fdp_one_run_rejects(1000, 100, 50, 0.0, 0.05)  # chance-level guessing rejects nothing
    flags = [fdp_one_run_rejects(1000, 100, 90, mu, 0.05) for mu in np.linspace(0, 4, 41)]
    assert flags == sorted(flags, reverse=True)  # rejected below some mu, never above it


def test_fdp_bound_is_the_epsilon_of_its_mu_and_more_correct_guesses_give_more():
    est = fdp_one_run_epsilon(90, 100, canaries=1000, delta=DELTA)
    assert est.estimator == "fdp-one-run" and est.nature == "lower-bound" and est.confidence == 0.95
    assert est.epsilon == pytest.approx(gdp_epsilon(est.details["mu_lb"], DELTA))
    assert fdp_one_run_rejects(1000, 100, 90, est.details["mu_lb"] * 0.999, 0.05)
    assert not fdp_one_run_rejects(1000, 100, 90, est.details["mu_lb"] * 1.001 + 1e-6, 0.05)
    assert fdp_one_run_epsilon(95, 100, canaries=1000, delta=DELTA).epsilon > est.epsilon


@pytest.mark.parametrize("eps", [1.0, 4.0])
def test_fdp_is_tighter_than_steinke_on_the_gaussian_mechanism_and_stays_below_the_truth(eps):
    over, gains = 0, []
    for seed in range(20):
        s, inc = _gaussian_canaries(eps, 1000, seed)
        f = best_fdp_one_run_epsilon(s, inc, delta=DELTA).epsilon
        st = best_one_run_epsilon(s, inc, delta=DELTA).epsilon
        over += f > eps
        gains.append(f - st)
    assert over == 0  # a 95% bound, conservative in practice: P[0 of 20 over | 5% each] = 0.36 at worst
    assert np.mean(gains) > 0


def test_gaussian_aggregate_covers_the_true_epsilon_at_its_confidence():
    # 200 seeded null runs at eps = 4 with 1000 canaries; the bound is exact under its model,
    # so exceedances ~ Binomial(200, 0.05): P[> 19] < 1% (this test's false-alarm rate)
    over, ratios = 0, []
    for seed in range(200):
        s, inc = _gaussian_canaries(4.0, 1000, seed)
        est = gaussian_aggregate_epsilon(s, inc, delta=DELTA)
        over += est.epsilon > 4.0
        ratios.append(est.epsilon / 4.0)
    assert binom.sf(19, 200, 0.05) < 0.01
    assert over <= 19
    assert np.median(ratios) >= 0.7  # the goal at eps = 4 with 10^3 canaries


def test_gaussian_aggregate_sees_nothing_without_a_shift_and_validates():
    rng = np.random.default_rng(0)
    inc = rng.random(500) < 0.5
    hits = sum(gaussian_aggregate_epsilon(rng.normal(size=500), inc, delta=DELTA).epsilon > 0 for _ in range(40))
    assert hits <= 7  # each > 0 with probability 5%: P[> 7 of 40] < 1%
    with pytest.raises(Exception, match="at least 2 canaries in and 2 out"):
        gaussian_aggregate_epsilon(np.zeros(5), np.array([1, 0, 0, 0, 0]), delta=DELTA)


def test_ceilings_read_from_finished_estimates():
    s, inc = _gaussian_canaries(2.0, 1000, 0)
    st = best_one_run_epsilon(s, inc, delta=DELTA)
    assert estimate_ceiling(st) == pytest.approx(one_run_ceiling(1000, delta=DELTA), rel=1e-9)
    f = best_fdp_one_run_epsilon(s, inc, delta=DELTA)
    assert f.epsilon <= estimate_ceiling(f)
    g = gaussian_aggregate_epsilon(s, inc, delta=DELTA)
    assert estimate_ceiling(g) > 100  # the Gaussian model caps the shift, not the canaries
