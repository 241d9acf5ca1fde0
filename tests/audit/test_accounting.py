"""Accounting goes through dp_accounting; checked against the Gaussian mechanism's closed
form (Balle & Wang 2018, analytic Gaussian mechanism) and between accountants."""

import math

import pytest
from scipy.stats import norm

from audit.privacy.accounting.accountants import (
    GaussianEventSpec,
    Neighbouring,
    calibrate_noise_multiplier,
    epsilon,
)
from audit.core.errors import InvalidParameterError


def exact_gaussian_delta(eps: float, sigma_over_sensitivity: float) -> float:
    """delta(eps) of one Gaussian mechanism (Balle & Wang 2018, Theorem 8)."""
    mu = 1.0 / sigma_over_sensitivity
    return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2)


@pytest.mark.parametrize("z", [0.8, 1.5, 4.0])
def test_pld_single_gaussian_matches_closed_form(z):
    eps = epsilon(GaussianEventSpec(z, 1), delta=1e-5)
    # the closed form's delta at the accountant's epsilon is 1e-5 up to PLD discretisation
    assert exact_gaussian_delta(eps, z) == pytest.approx(1e-5, rel=0.05)


def test_replace_one_is_twice_the_sensitivity():
    z = 3.0
    replace = epsilon(GaussianEventSpec(z, 1, 1.0, Neighbouring.REPLACE), delta=1e-5)
    add_remove_half = epsilon(GaussianEventSpec(z / 2, 1), delta=1e-5)
    assert replace == pytest.approx(add_remove_half, rel=1e-3)


def test_rdp_is_an_upper_bound_on_pld():
    spec = GaussianEventSpec(1.1, 100, 0.05)
    pld = epsilon(spec, delta=1e-5, accountant="pld")
    rdp = epsilon(spec, delta=1e-5, accountant="rdp")
    assert pld <= rdp <= 1.5 * pld


def test_rdp_refused_for_replace_one():
    with pytest.raises(InvalidParameterError, match="pld"):
        epsilon(GaussianEventSpec(1.0, 1, 1.0, Neighbouring.REPLACE), delta=1e-5, accountant="rdp")


def test_calibration_reaches_target_from_below():
    spec = GaussianEventSpec(1.0, 1, 1.0, Neighbouring.REPLACE)
    z = calibrate_noise_multiplier(spec, target_epsilon=1.0, delta=1e-5)
    got = epsilon(GaussianEventSpec(z, 1, 1.0, Neighbouring.REPLACE), delta=1e-5)
    assert 0.99 <= got <= 1.0 + 1e-6


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-5, float("nan")])
def test_bad_delta_names_the_value(delta):
    with pytest.raises(InvalidParameterError, match="delta"):
        epsilon(GaussianEventSpec(1.0, 1), delta=delta)
