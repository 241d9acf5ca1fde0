"""Gaussian differential privacy closed forms (Dong, Roth, Su 2019/2022, "Gaussian
Differential Privacy", JRSS-B; arXiv 1905.02383).

A mechanism is mu-GDP when telling D from D' is at least as hard as telling N(0, 1) from
N(mu, 1): its trade-off curve (smallest type-II error at type-I error alpha) is above

    G_mu(alpha) = Phi(Phi^-1(1 - alpha) - mu)                    (their Definition 2.7)

and mu-GDP holds iff (eps, delta(eps))-DP holds for every eps >= 0 with

    delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)    (their Corollary 2.13).

The Gaussian mechanism with l2-sensitivity S and noise std sigma is exactly (S/sigma)-GDP,
and the formula above is then the exact ("analytic") Gaussian-mechanism delta of Balle &
Wang 2018.

Project choices: everything is computed in log space (``scipy.special.log_ndtr``) so that
eps = 200 or mu = 20 neither overflows e^eps nor loses delta to cancellation; the inverse
``gdp_epsilon`` solves log delta(eps) = log delta with Brent's method.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtr, ndtri

from audit.core.errors import invalid
from audit.core.validation import check_interval, check_nonnegative


def _log_gdp_delta(epsilon: float, mu: float) -> float:
    """log delta(epsilon) of mu-GDP (-inf when delta underflows or is 0)."""
    if mu == 0.0:
        return -math.inf
    if math.isinf(mu):
        return 0.0  # mu = inf: the two outputs are told apart for sure, delta = 1
    a = float(log_ndtr(-epsilon / mu + mu / 2))
    b = epsilon + float(log_ndtr(-epsilon / mu - mu / 2))
    if not b < a:
        return -math.inf
    return a + math.log(-math.expm1(b - a))


def gdp_delta(epsilon: float, mu: float) -> float:
    """delta(epsilon) of mu-GDP (Dong, Roth, Su, Corollary 2.13).

    Args:
        epsilon: Privacy-loss level, >= 0.
        mu: GDP parameter, >= 0 (``inf`` allowed: delta = 1).

    Returns:
        The smallest delta such that mu-GDP implies (epsilon, delta)-DP.
    """
    epsilon = check_nonnegative("epsilon", "gdp_delta", epsilon)
    mu = check_nonnegative("mu", "gdp_delta", mu)
    return math.exp(_log_gdp_delta(epsilon, mu))


def gdp_epsilon(mu: float, delta: float) -> float:
    """The epsilon at which mu-GDP gives ``delta``: the root of delta(eps) = delta.

    Args:
        mu: GDP parameter, >= 0 (``inf`` gives ``inf``).
        delta: Target delta in [0, 1).

    Returns:
        0 when delta(0) <= delta already (or mu = 0); ``inf`` when delta = 0 and mu > 0
        (mu-GDP with mu > 0 implies no finite pure-DP epsilon); otherwise the unique root
        (delta(eps) is strictly decreasing in eps).
    """
    mu = check_nonnegative("mu", "gdp_epsilon", mu)
    delta = check_interval("delta", "gdp_epsilon", delta, low=0, high=1, closed="left")
    if mu == 0.0 or gdp_delta(0.0, mu) <= delta:
        return 0.0
    if delta == 0.0 or math.isinf(mu):
        return math.inf
    target = math.log(delta)
    # delta(eps) <= Phi(-eps/mu + mu/2), which is below delta once eps >= mu^2/2 - mu Phi^-1(delta)
    high = max(mu * mu / 2.0 - mu * float(ndtri(delta)), 1e-12) * 1.01 + 1e-9
    while _log_gdp_delta(high, mu) > target:  # safety net; the bound above already holds
        high *= 2.0
    return float(brentq(lambda e: _log_gdp_delta(e, mu) - target, 0.0, high, xtol=1e-13, rtol=4e-15))


def gdp_tradeoff(alpha, mu: float):
    """The mu-GDP trade-off curve G_mu(alpha) = Phi(Phi^-1(1 - alpha) - mu).

    Args:
        alpha: Type-I error(s) in [0, 1]; a float or an array.
        mu: GDP parameter, >= 0.

    Returns:
        The smallest type-II error of any test at type-I error ``alpha`` (same shape as
        ``alpha``; a float for a scalar).
    """
    mu = check_nonnegative("mu", "gdp_tradeoff", mu)
    a = np.asarray(alpha, dtype=float)
    bad = a[~((a >= 0) & (a <= 1))]
    if bad.size:
        raise invalid("alpha", "gdp_tradeoff", "a float or an array of floats in the range [0, 1]",
                      float(bad.flat[0]))
    out = ndtr(ndtri(1.0 - a) - mu)
    return float(out) if out.ndim == 0 else out
