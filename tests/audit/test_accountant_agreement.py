"""Accountant plug-ins agree within their stated tolerances, and with the exact Gaussian
mechanism at sampling rate 1 and one step.

Tolerances: opacus' PRV is accurate to eps_error = 0.01 (absolute) and dp_accounting's PLD
to about 1% (pessimistic discretisation), so |PRV - PLD| <= 0.011 + 0.01 * PLD. RDP (both
libraries) converts Renyi bounds to (eps, delta) loosely: it is only required to be an upper
bound, RDP >= PLD * 0.99. The full grid (z 0.5-4, q 0.01-1, steps 1-1000) is `slow`
(about 3 minutes, one PLD composition at z=0.5, q=1, 1000 steps takes 2 minutes alone).
"""

import itertools
import math

import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from audit.privacy.accounting.accountants import GaussianEventSpec, epsilon

FAST_GRID = [
    *itertools.product([1.0, 2.0, 4.0], [0.01, 0.1], [1, 10, 1000]),
    *itertools.product([1.0, 4.0], [1.0], [1, 10]),
]
FULL_GRID = list(itertools.product([0.5, 1.0, 2.0, 4.0], [0.01, 0.1, 1.0], [1, 10, 1000]))


def check_agreement(z, q, steps):
    spec = GaussianEventSpec(z, steps, q)
    pld = epsilon(spec, delta=1e-5, accountant="pld")
    prv = epsilon(spec, delta=1e-5, accountant="opacus-prv")
    if math.isfinite(prv):  # opacus' PRV overflows at z=0.5, q=1, 1000 steps
        assert abs(prv - pld) <= 0.011 + 0.01 * pld, (pld, prv)
    for rdp_name in ("rdp", "opacus-rdp"):
        assert epsilon(spec, delta=1e-5, accountant=rdp_name) >= 0.99 * pld


@pytest.mark.parametrize("z, q, steps", FAST_GRID)
def test_accountants_agree_on_fast_grid(z, q, steps):
    check_agreement(z, q, steps)


@pytest.mark.slow
@pytest.mark.parametrize("z, q, steps", FULL_GRID)
def test_accountants_agree_on_full_grid(z, q, steps):
    check_agreement(z, q, steps)


def exact_gaussian_epsilon(z: float, delta: float) -> float:
    """Epsilon of one Gaussian mechanism with sensitivity 1 and std z (Balle & Wang 2018)."""
    mu = 1.0 / z

    def gap(eps):
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta

    return brentq(gap, 0.0, 100.0)


@pytest.mark.parametrize("z", [0.5, 1.0, 2.0, 4.0])
def test_single_gaussian_matches_exact_formula(z):
    exact = exact_gaussian_epsilon(z, 1e-5)
    spec = GaussianEventSpec(z, 1, 1.0)
    assert epsilon(spec, delta=1e-5, accountant="pld") == pytest.approx(exact, rel=0.01, abs=0.002)
    assert epsilon(spec, delta=1e-5, accountant="opacus-prv") == pytest.approx(exact, rel=0.01, abs=0.011)
    assert epsilon(spec, delta=1e-5, accountant="rdp") >= exact
    assert epsilon(spec, delta=1e-5, accountant="opacus-rdp") >= exact
