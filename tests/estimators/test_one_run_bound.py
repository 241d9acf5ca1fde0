"""One-run auditing bound (Steinke, Nasr, Jagielski 2023, arXiv 2305.08846).

Deterministic except the seeded simulations, whose false-failure rates are stated where
they are statistical.
"""

import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from audit.core.errors import InvalidParameterError
from audit.privacy.estimators import best_one_run_epsilon, one_run_epsilon, one_run_guesses, one_run_p_value

DELTA = 1e-5


def sigma_for(eps):
    def delta(s):
        return norm.cdf(-eps * s + 1 / (2 * s)) - math.exp(eps) * norm.cdf(-eps * s - 1 / (2 * s))
    return brentq(lambda s: delta(s) - DELTA, 0.05, 100.0)


@pytest.mark.parametrize(
    "m, r, v, delta, published",
    [(1000, 100, 75, 1e-4, 0.673),  # the paper's Appendix D example (printed rounded)
     (100_000, 1510, 1439, 1e-5, 2.675)],  # its Section 7 example (printed truncated)
)
def test_reproduces_the_papers_worked_examples(m, r, v, delta, published):
    eps = one_run_epsilon(v, r, canaries=m, delta=delta, beta=0.05).epsilon
    assert published - 1e-3 <= eps <= published + 2e-3


@pytest.mark.parametrize("r", [1, 10, 100, 1000])
def test_perfect_guesses_pure_dp_closed_form(r):
    # v = r, delta = 0: p-value = q^r, so the bound is logit(beta^(1/r)), floored at 0
    q = 0.05 ** (1 / r)
    expected = max(math.log(q / (1 - q)), 0.0)
    assert one_run_epsilon(r, r, canaries=1000).epsilon == pytest.approx(expected, abs=1e-8)


def test_perfect_attack_bound_grows_with_the_number_of_guesses():
    for delta in (0.0, DELTA):
        bounds = [one_run_epsilon(r, r, canaries=1000, delta=delta).epsilon for r in (10, 30, 100, 300, 1000)]
        assert bounds[0] > 0 and all(a < b for a, b in zip(bounds, bounds[1:]))
    # r = 1000 perfect guesses: ln(333) = 5.81 at delta = 0 (the most 1000 canaries can show
    # at 95%), a little less with the delta term
    assert one_run_epsilon(1000, 1000, canaries=1000).epsilon == pytest.approx(5.809, abs=1e-3)
    assert 5.7 < one_run_epsilon(1000, 1000, canaries=1000, delta=DELTA).epsilon < 5.809


def test_bound_is_monotone_in_correct_guesses_and_in_delta():
    by_v = [one_run_epsilon(v, 200, canaries=1000).epsilon for v in range(90, 201, 5)]
    assert all(a <= b for a, b in zip(by_v, by_v[1:])) and by_v[0] == 0.0 and by_v[-1] > 3
    positive = [b for b in by_v if b > 0]
    assert all(a < b for a, b in zip(positive, positive[1:]))
    by_delta = [one_run_epsilon(180, 200, canaries=1000, delta=d).epsilon for d in (0.0, 1e-6, 1e-4, 1e-3)]
    assert all(a > b for a, b in zip(by_delta, by_delta[1:]))


def test_random_guessing_gives_about_zero():
    assert one_run_epsilon(50, 100, canaries=1000).epsilon == 0.0
    rng = np.random.default_rng(0)
    included = rng.random(1000) < 0.5
    est = best_one_run_epsilon(rng.normal(size=1000), included, delta=DELTA, ks=(10, 50, 100, 250))
    assert est.epsilon <= 0.3  # at the union-bounded level beta/4 a useless attack shows ~0


def test_p_value_delta_term():
    # delta adds 2 m delta alpha_v with alpha_v <= max_i P[v-i <= B < v] / i <= 1
    base = one_run_p_value(1000, 100, 75, 0.5, 0.0)
    with_delta = one_run_p_value(1000, 100, 75, 0.5, 1e-4)
    assert base < with_delta <= base + 2 * 1000 * 1e-4
    assert one_run_p_value(1000, 100, 0, 3.0, 0.1) == 1.0


def test_valid_over_many_runs_of_randomized_response():
    """Each of m = 500 canaries is released by randomized response with eps = 1 (the tight
    case of the theorem); the auditor guesses all. The bound exceeds 1 with probability
    <= beta = 0.1; over 200 seeded runs we require <= 20% above (a valid bound fails this
    with probability < 1e-4). Seeded: 18/200 = 9% are above -- the theorem is tight here."""
    eps, m, runs = 1.0, 500, 200
    p = math.exp(eps) / (1 + math.exp(eps))
    rng = np.random.default_rng(3)
    above = 0
    for _ in range(runs):
        correct = int((rng.random(m) < p).sum())
        above += one_run_epsilon(correct, m, canaries=m, beta=0.1).epsilon > eps
    assert above <= 0.2 * runs


def test_white_box_gaussian_mechanism_stays_below_the_truth():
    eps = 4.0
    rng = np.random.default_rng(3)
    included = rng.random(10_000) < 0.5
    scores = rng.normal(included.astype(float), sigma_for(eps))
    est = best_one_run_epsilon(scores, included, delta=DELTA, ks=(100, 300, 1000))
    assert 0.5 < est.epsilon <= eps
    assert est.details["per_budget_beta"] == pytest.approx(0.05 / 3) and est.confidence == 0.95


def test_guesses_by_hand():
    scores = [0.9, 0.1, 0.5, 0.8, 0.2, 0.3]
    included = [1, 0, 1, 0, 1, 0]
    # top 2: 0.9 (in, right), 0.8 (out, wrong); bottom 2: 0.1 (out, right), 0.2 (in, wrong)
    assert one_run_guesses(scores, included, k_plus=2, k_minus=2) == (2, 4)
    assert one_run_guesses(scores, included, k_plus=1, k_minus=0) == (1, 1)
    assert one_run_guesses(scores, included, k_plus=0, k_minus=0) == (0, 0)
    # ties are broken by index (among equal scores a later canary ranks higher): deterministic
    assert one_run_guesses([1.0, 1.0, 1.0], [False, False, True], k_plus=1, k_minus=1) == (2, 2)
    assert one_run_guesses([1.0, 1.0, 1.0], [True, False, False], k_plus=1, k_minus=1) == (0, 2)


def test_best_is_the_max_over_budgets_at_the_union_bound_level():
    rng = np.random.default_rng(1)
    included = rng.random(2000) < 0.5
    scores = rng.normal(2.0 * included, 1.0)
    ks = (10, (50, 20), 200)
    best = best_one_run_epsilon(scores, included, delta=DELTA, beta=0.05, ks=ks)
    singles = []
    for kp, km in ((10, 10), (50, 20), (200, 200)):
        v, r = one_run_guesses(scores, included, k_plus=kp, k_minus=km)
        singles.append(one_run_epsilon(v, r, canaries=2000, delta=DELTA, beta=0.05 / 3).epsilon)
    assert best.epsilon == pytest.approx(max(singles))
    assert best.details["budgets_tried"] == [[10, 10], [50, 20], [200, 200]]
    assert best.trials == 2000 and best.nature == "lower-bound"
    json.dumps(best.to_dict())
    # the union bound costs something: one budget alone at the full beta is higher
    v, r = one_run_guesses(scores, included, k_plus=200, k_minus=200)
    assert one_run_epsilon(v, r, canaries=2000, delta=DELTA).epsilon >= singles[2]


@pytest.mark.parametrize(
    "call, shown",
    [
        (lambda: one_run_epsilon(5, 4, canaries=10), "Got 5"),
        (lambda: one_run_epsilon(1, 11, canaries=10), "Got 11"),
        (lambda: one_run_epsilon(1, 1, canaries=0), "Got 0"),
        (lambda: one_run_epsilon(-1, 1, canaries=10), "Got -1"),
        (lambda: one_run_epsilon(1, 1, canaries=10, beta=0.0), "Got 0.0"),
        (lambda: one_run_epsilon(1, 1, canaries=10, beta=1.0), "Got 1.0"),
        (lambda: one_run_epsilon(1, 1, canaries=10, delta=1.0), "Got 1.0"),
        (lambda: one_run_epsilon(1.5, 2, canaries=10), "Got 1.5"),
        (lambda: one_run_guesses([1.0, 2.0], [1, 0], k_plus=2, k_minus=1), "Got 1"),
        (lambda: one_run_guesses([1.0, 2.0], [1, 0, 1], k_plus=1, k_minus=1), "shape (3,)"),
        (lambda: one_run_guesses([1.0, 2.0], [2, 0], k_plus=1, k_minus=1), "'included'"),
        (lambda: one_run_guesses([1.0, float("inf")], [1, 0], k_plus=1, k_minus=1), "infinite"),
        (lambda: best_one_run_epsilon([1.0, 2.0], [1, 0], delta=0.0, ks=()), "Got []"),
        (lambda: best_one_run_epsilon([1.0, 2.0], [1, 0], delta=0.0, ks=(5,)), "Got 5"),
        (lambda: best_one_run_epsilon([1.0, 2.0], [1, 0], delta=0.0, beta=2.0), "Got 2.0"),
    ],
)
def test_bad_inputs_name_the_value(call, shown):
    with pytest.raises(InvalidParameterError, match="parameter of") as err:
        call()
    assert shown in str(err.value)
