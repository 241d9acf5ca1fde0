"""Audit power ceilings: a perfectly leaky mechanism's bound, which no outcome of the same
audit can exceed, and the verdict that says "too weak to say" above it."""

import numpy as np
import pytest

from audit.privacy.estimators import best_one_run_epsilon, clopper_pearson_epsilon, one_run_epsilon
from audit.privacy.estimators.power import (
    INCONCLUSIVE,
    clopper_pearson_ceiling,
    one_run_ceiling,
    power_verdict,
)

DELTA = 1e-5


def test_one_run_ceiling_is_all_guesses_right_at_the_best_budget():
    ks = (10, 30, 100, 300)
    direct = max(one_run_epsilon(2 * k, 2 * k, canaries=1000, delta=DELTA, beta=0.05 / len(ks)).epsilon for k in ks)
    assert one_run_ceiling(1000, delta=DELTA) == pytest.approx(direct, abs=1e-9)
    # only the budgets that fit: 100 canaries take k = 10 and 30
    small = max(one_run_epsilon(2 * k, 2 * k, canaries=100, delta=DELTA, beta=0.05 / 2).epsilon for k in (10, 30))
    assert one_run_ceiling(100, delta=DELTA) == pytest.approx(small, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_no_one_run_outcome_exceeds_its_ceiling(seed):
    rng = np.random.default_rng(seed)
    included = rng.random(1000) < 0.5
    scores = included * rng.uniform(0, 4) + rng.normal(size=1000)  # leaky, not perfectly
    est = best_one_run_epsilon(scores, included, delta=DELTA).epsilon
    assert est <= one_run_ceiling(1000, delta=DELTA) + 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_no_clopper_pearson_outcome_exceeds_its_ceiling(seed):
    rng = np.random.default_rng(seed)
    shift = rng.uniform(1, 6)
    est = clopper_pearson_epsilon(rng.normal(shift, 1, 2000), rng.normal(0, 1, 2000), delta=DELTA).epsilon
    assert est <= clopper_pearson_ceiling(2000, delta=DELTA) + 1e-9
    assert clopper_pearson_ceiling(200, delta=DELTA) < clopper_pearson_ceiling(2000, delta=DELTA)


def test_a_pass_above_the_ceiling_is_inconclusive():
    ceiling = one_run_ceiling(1000, delta=DELTA)
    assert power_verdict("PASS", ceiling + 1, ceiling) == INCONCLUSIVE
    assert power_verdict("PASS", ceiling - 1, ceiling) == "PASS"
    assert power_verdict("VIOLATION", ceiling + 1, ceiling) == "VIOLATION"
    assert power_verdict("PASS", None, ceiling) == "PASS"
