"""mu-GDP closed forms (Dong, Roth, Su): delta(eps), its inverse and the trade-off curve.

Deterministic (no sampling); the hypothesis properties run derandomized.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import norm

from audit.core.errors import InvalidParameterError
from audit.privacy.estimators import gdp_delta, gdp_epsilon, gdp_tradeoff


def gaussian_mechanism_delta(eps, sensitivity, sigma):
    """Exact delta(eps) of the Gaussian mechanism (Balle & Wang 2018, Theorem 8), written
    out independently of the GDP parametrisation."""
    a = sensitivity / (2 * sigma) - eps * sigma / sensitivity
    b = -sensitivity / (2 * sigma) - eps * sigma / sensitivity
    return norm.cdf(a) - math.exp(eps) * norm.cdf(b)


def sigma_for(eps, delta=1e-5):
    """Noise std giving the exact Gaussian mechanism (sensitivity 1) epsilon ``eps`` at delta."""
    return brentq(lambda s: gaussian_mechanism_delta(eps, 1.0, s) - delta, 0.01, 1000.0, xtol=1e-14)


@pytest.mark.parametrize("eps, sensitivity, sigma", [(0.0, 1.0, 1.0), (0.5, 1.0, 2.0), (1.0, 2.0, 1.0),
                                                     (3.0, 1.0, 0.7), (8.0, 1.0, 0.4), (1.0, 0.1, 1.0)])
def test_delta_is_the_exact_gaussian_mechanism_delta(eps, sensitivity, sigma):
    # the Gaussian mechanism with sensitivity S and noise sigma is exactly (S / sigma)-GDP
    assert gdp_delta(eps, sensitivity / sigma) == pytest.approx(
        gaussian_mechanism_delta(eps, sensitivity, sigma), rel=1e-9, abs=1e-300)


def test_known_values():
    assert gdp_delta(0.0, 1.0) == pytest.approx(2 * norm.cdf(0.5) - 1, rel=1e-12)  # 0.3829...
    assert gdp_delta(0.0, 1.0) == pytest.approx(0.38292492254802624, rel=1e-12)
    assert gdp_delta(1.0, 0.0) == 0.0 and gdp_delta(0.0, 0.0) == 0.0
    assert gdp_delta(1.0, math.inf) == 1.0
    assert gdp_epsilon(0.0, 1e-5) == 0.0
    assert gdp_epsilon(1.0, 0.5) == 0.0  # delta(0) = 0.383 < 0.5 already
    assert gdp_epsilon(1.0, 0.0) == math.inf and gdp_epsilon(math.inf, 1e-5) == math.inf


@pytest.mark.parametrize("eps_claim", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_epsilon_of_a_calibrated_gaussian_mechanism_is_the_claim(eps_claim):
    sigma = sigma_for(eps_claim)
    assert gdp_epsilon(1.0 / sigma, 1e-5) == pytest.approx(eps_claim, rel=1e-8)


@pytest.mark.parametrize("mu", [0.05, 0.3, 1.0, 3.0, 10.0, 20.0])
@pytest.mark.parametrize("delta", [1e-12, 1e-5, 1e-2])
def test_epsilon_inverts_delta(mu, delta):
    eps = gdp_epsilon(mu, delta)
    if gdp_delta(0.0, mu) <= delta:
        assert eps == 0.0
    else:
        assert gdp_delta(eps, mu) == pytest.approx(delta, rel=1e-8)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(mu=st.floats(0.01, 30.0), eps=st.floats(0.0, 150.0))
def test_round_trip_property(mu, eps):
    delta = gdp_delta(eps, mu)
    if 1e-250 < delta < gdp_delta(0.0, mu):
        back = gdp_epsilon(mu, delta)
        assert gdp_delta(back, mu) == pytest.approx(delta, rel=1e-7)
        if delta < 0.5:  # above, delta(eps) is too flat in eps for eps to be recovered from it
            assert back == pytest.approx(eps, rel=1e-6, abs=1e-6)


def test_monotone_in_eps_mu_and_delta():
    eps = np.linspace(0.0, 30.0, 61)
    for mu in (0.2, 1.0, 5.0):
        d = [gdp_delta(e, mu) for e in eps]
        assert all(a >= b for a, b in zip(d, d[1:])) and d[0] > d[-1]
    mus = np.linspace(0.05, 15.0, 40)
    for e in (0.0, 1.0, 10.0):
        d = [gdp_delta(e, m) for m in mus]
        assert all(a <= b for a, b in zip(d, d[1:]))
    e_mu = [gdp_epsilon(m, 1e-5) for m in mus]
    assert all(a <= b for a, b in zip(e_mu, e_mu[1:]))
    e_delta = [gdp_epsilon(1.0, d) for d in (1e-10, 1e-7, 1e-5, 1e-3, 1e-1)]
    assert all(a > b for a, b in zip(e_delta, e_delta[1:]))


def test_no_overflow_at_large_eps_and_mu():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow or invalid-value warning fails the test
        d = gdp_delta(200.0, 20.0)
        assert 0.0 < d < 1.0 and math.isfinite(d)
        assert gdp_delta(200.0, 1.0) == 0.0  # underflows cleanly
        assert gdp_delta(1000.0, 50.0) >= 0.0
        eps = gdp_epsilon(20.0, 1e-5)
        assert math.isfinite(eps) and gdp_delta(eps, 20.0) == pytest.approx(1e-5, rel=1e-8)
        assert math.isfinite(gdp_epsilon(50.0, 1e-300))


def test_large_values_against_high_precision():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60

    def exact(eps, mu):
        eps, mu = mpmath.mpf(eps), mpmath.mpf(mu)
        return mpmath.ncdf(-eps / mu + mu / 2) - mpmath.e ** eps * mpmath.ncdf(-eps / mu - mu / 2)

    for eps, mu in [(200.0, 20.0), (150.0, 20.0), (30.0, 5.0), (0.001, 0.01), (5.0, 0.5)]:
        assert gdp_delta(eps, mu) == pytest.approx(float(exact(eps, mu)), rel=1e-7)


def test_tradeoff_curve():
    assert gdp_tradeoff(0.05, 1.0) == pytest.approx(norm.cdf(norm.ppf(0.95) - 1.0), rel=1e-12)  # 0.7405
    assert gdp_tradeoff(0.05, 1.0) == pytest.approx(0.740489, abs=1e-6)
    alpha = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(gdp_tradeoff(alpha, 0.0), 1.0 - alpha, atol=1e-12)
    g = gdp_tradeoff(alpha, 2.0)
    assert g[0] == 1.0 and g[-1] == 0.0 and np.all(np.diff(g) <= 0)
    # symmetric: G_mu is its own inverse
    np.testing.assert_allclose(gdp_tradeoff(gdp_tradeoff(alpha, 1.5), 1.5), alpha, atol=1e-9)


@pytest.mark.parametrize("mu, eps", [(0.5, 0.3), (1.0, 1.0), (3.0, 4.0)])
def test_delta_is_the_conjugate_of_the_tradeoff_curve(mu, eps):
    # delta(eps) = max_alpha 1 - G_mu(alpha) - e^eps alpha (Dong, Roth, Su, Proposition 2.12)
    alpha = np.concatenate([np.geomspace(1e-12, 1e-3, 20000), np.linspace(1e-3, 1.0, 20000)])
    primal = float(np.max(1.0 - gdp_tradeoff(alpha, mu) - math.exp(eps) * alpha))
    assert gdp_delta(eps, mu) == pytest.approx(primal, rel=1e-4)


@pytest.mark.parametrize(
    "call, shown",
    [
        (lambda: gdp_delta(-1.0, 1.0), "-1.0"),
        (lambda: gdp_delta(1.0, -0.5), "-0.5"),
        (lambda: gdp_delta(float("nan"), 1.0), "nan"),
        (lambda: gdp_epsilon(1.0, 1.0), "1.0"),
        (lambda: gdp_epsilon(1.0, -1e-5), "-1e-05"),
        (lambda: gdp_epsilon(-2.0, 1e-5), "-2.0"),
        (lambda: gdp_tradeoff(1.5, 1.0), "1.5"),
        (lambda: gdp_tradeoff([0.1, -0.2], 1.0), "-0.2"),
        (lambda: gdp_tradeoff(0.5, -1.0), "-1.0"),
    ],
)
def test_bad_inputs_name_the_value(call, shown):
    with pytest.raises(InvalidParameterError, match="parameter of gdp_") as err:
        call()
    assert shown in str(err.value)
