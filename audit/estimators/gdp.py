"""Gaussian differential privacy closed forms (Dong, Roth, Su 2019, "Gaussian Differential
Privacy"; Corollary 2.13): mu-GDP implies (eps, delta(eps))-DP for every eps with

    delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2).

Computed in log space (``scipy.special.log_ndtr``) so large eps or mu do not overflow.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtr, ndtri


def gdp_delta(epsilon: float, mu: float) -> float:
    """delta(epsilon) of mu-GDP."""
    if mu <= 0:
        return 0.0
    a = log_ndtr(-epsilon / mu + mu / 2)
    b = epsilon + log_ndtr(-epsilon / mu - mu / 2)
    return float(math.exp(a) * -math.expm1(b - a)) if b < a else 0.0


def gdp_epsilon(mu: float, delta: float) -> float:
    """The epsilon at which mu-GDP gives ``delta`` (0 when delta(0) <= delta already)."""
    if mu <= 0 or gdp_delta(0.0, mu) <= delta:
        return 0.0
    high = 1.0
    while gdp_delta(high, mu) > delta:
        high *= 2.0
    return float(brentq(lambda e: gdp_delta(e, mu) - delta, 0.0, high, xtol=1e-12, rtol=1e-10))


def gdp_tradeoff(alpha, mu: float):
    """The mu-GDP trade-off curve: smallest type-II error at type-I error ``alpha``."""
    return ndtr(ndtri(1.0 - np.asarray(alpha, dtype=float)) - mu)
