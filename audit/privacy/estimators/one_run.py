"""Privacy auditing with one training run (Steinke, Nasr, Jagielski 2023, "Privacy auditing
with one (1) training run", NeurIPS; arXiv 2305.08846).

m canaries are each included independently with probability 1/2; after a single run the
auditor guesses "in" for its most confident canaries and "out" for its least confident,
abstaining on the rest. With r guesses of which v are right, an eps-DP mechanism gives

    P[V >= v] <= P[Binomial(r, q) >= v],   q = e^eps / (1 + e^eps)

(the paper's main theorem, pure-DP case), and an (eps, delta)-DP one gives the p-value
plus an additive delta term (its Corollary 5.4 in the numbering of arXiv v1; the function
``p_value_DP_audit`` of its Appendix D):

    p(eps, delta) = P[Binomial(r, q) >= v] + 2 m delta alpha_v,
    alpha_v = max_{1 <= i <= v} P[v - i <= Binomial(r, q) < v] / i.

The bound eps_lb is the largest eps whose p-value is still below beta, found by bisection
(the paper's ``get_eps_audit``); it is a lower bound at confidence 1 - beta. The code
reproduces the paper's worked examples (m=1000, r=100, v=75, delta=1e-4 -> 0.673 in
Appendix D; m=10^5, r=1510, v=1439, delta=1e-5 -> 2.675 in Section 7).

Project choices:

* Guesses (``one_run_guesses``): "in" for the k+ highest scores, "out" for the k- lowest;
  ties are broken by canary index (stable sort: among equal scores a later canary ranks
  higher), so the guesses are deterministic.
* Several guess budgets (``best_one_run_epsilon``): the paper fixes k+ and k- before
  looking (choosing the best of many after the fact voids the stated confidence). We allow
  a list of budgets and keep the confidence with a union bound: each budget is tested at
  beta / len(ks), and the best of those bounds holds at confidence 1 - beta.
* Bisection to 1e-10 in eps, bracket grown by doubling (capped at eps = 1000).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import numpy as np
from scipy.stats import binom

from audit.core.errors import InvalidParameterError, invalid
from audit.privacy.estimators.result import EmpiricalEpsilon, finite_scores
from audit.core.validation import check_interval

_EPS_CAP = 1000.0


def one_run_p_value(canaries: int, guesses: int, correct: int, epsilon: float, delta: float) -> float:
    """P[at least ``correct`` of ``guesses`` right] under an (epsilon, delta)-DP null.

    Steinke, Nasr, Jagielski 2023, Corollary 5.4 / Appendix D (``p_value_DP_audit``).
    """
    m, r, v = canaries, guesses, correct
    q = 1.0 / (1.0 + math.exp(-epsilon)) if epsilon < 700 else 1.0
    tail = float(binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    if delta == 0.0 or v == 0:
        return min(tail, 1.0)
    below = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[B = v-1], P[B = v-2], ..., P[B = 0]
    alpha_v = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))
    return min(tail + 2.0 * m * delta * alpha_v, 1.0)


def one_run_epsilon(correct: int, guesses: int, *, canaries: int, delta: float = 0.0,
                    beta: float = 0.05) -> EmpiricalEpsilon:
    """Largest epsilon rejected at level ``beta`` given ``correct`` of ``guesses`` right.

    Args:
        correct: v, number of right guesses, 0 <= v <= guesses.
        guesses: r, number of guesses (abstentions excluded), 0 <= r <= canaries.
        canaries: m, number of canaries (each included with probability 1/2), >= 1.
        delta: The delta of the null hypothesis, in [0, 1).
        beta: 1 - confidence, in (0, 1).

    Returns:
        An :class:`EmpiricalEpsilon` (nature "lower-bound", confidence 1 - beta, trials =
        canaries) with details guesses, correct and the p-value at eps = 0.
    """
    start = time.perf_counter()
    owner = "one_run_epsilon"
    m = check_interval("canaries", owner, canaries, kind=int, low=1)
    r = check_interval("guesses", owner, guesses, kind=int, low=0, high=m)
    v = check_interval("correct", owner, correct, kind=int, low=0, high=r)
    delta = check_interval("delta", owner, delta, low=0, high=1, closed="left")
    beta = check_interval("beta", owner, beta, low=0, high=1, closed="neither")

    def rejected(eps: float) -> bool:
        return one_run_p_value(m, r, v, eps, delta) < beta

    p0 = one_run_p_value(m, r, v, 0.0, delta)
    lo = 0.0
    if p0 < beta:
        hi = 1.0
        while rejected(hi) and hi < _EPS_CAP:
            lo, hi = hi, min(2.0 * hi, _EPS_CAP)
        while hi - lo > 1e-10:
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if rejected(mid) else (lo, mid)
    details = {"guesses": r, "correct": v, "p_value_at_zero": p0}
    return EmpiricalEpsilon("one-run", lo, delta, "lower-bound", 1.0 - beta, m,
                            time.perf_counter() - start, details)


def _inclusion(included, size: int, owner: str) -> np.ndarray:
    inc = np.asarray(included)
    if inc.shape != (size,) or not np.isin(inc, (0, 1)).all():
        raise InvalidParameterError(
            f"The 'included' parameter of {owner} must be a 1-D array of {size} booleans (or 0/1), "
            f"one per score. Got an array of shape {inc.shape} instead."
        )
    return inc.astype(bool)


def one_run_guesses(scores, included, *, k_plus: int, k_minus: int) -> tuple[int, int]:
    """Guess "in" for the ``k_plus`` highest scores and "out" for the ``k_minus`` lowest.

    Args:
        scores: 1-D finite scores, one per canary (higher = more likely included).
        included: The true inclusion bits, same length.
        k_plus: Number of "in" guesses, >= 0.
        k_minus: Number of "out" guesses, >= 0; k_plus + k_minus <= number of canaries.

    Returns:
        (correct, guesses) with guesses = k_plus + k_minus.
    """
    owner = "one_run_guesses"
    s = finite_scores(scores, "scores", owner, min_size=1)
    inc = _inclusion(included, len(s), owner)
    kp = check_interval("k_plus", owner, k_plus, kind=int, low=0, high=len(s))
    km = check_interval("k_minus", owner, k_minus, kind=int, low=0, high=len(s) - kp)
    order = np.argsort(s, kind="stable")
    correct = int(inc[order[len(s) - kp:]].sum()) + int((~inc[order[:km]]).sum())
    return correct, kp + km


def _budgets(ks: Iterable, m: int, owner: str) -> list[tuple[int, int]]:
    out = []
    for k in ks:
        pair = (k, k) if np.ndim(k) == 0 else tuple(k)
        if len(pair) != 2:
            raise invalid("ks", owner, "a list of ints k or (k_plus, k_minus) pairs", list(ks))
        kp = check_interval("ks", owner, pair[0], kind=int, low=0)
        km = check_interval("ks", owner, pair[1], kind=int, low=0)
        if kp + km > m or kp + km == 0:
            raise invalid("ks", owner, f"budgets with 1 <= k_plus + k_minus <= {m} (the canaries)", k)
        out.append((kp, km))
    if not out:
        raise invalid("ks", owner, "a non-empty list of budgets", list(ks))
    return out


def best_one_run_epsilon(scores, included, *, delta: float, beta: float = 0.05,
                         ks: Iterable = (10, 30, 100, 300)) -> EmpiricalEpsilon:
    """The best one-run bound over several guess budgets, at overall confidence 1 - beta.

    Args:
        scores: 1-D finite canary scores (higher = more likely included).
        included: The true inclusion bits.
        delta: The delta of the null hypothesis, in [0, 1).
        beta: 1 - overall confidence, in (0, 1); each budget is tested at beta / len(ks)
            (union bound).
        ks: Budgets: an int k means k_plus = k_minus = k; a pair is (k_plus, k_minus).

    Returns:
        An :class:`EmpiricalEpsilon` whose details name the best budget, its counts, all the
        budgets tried and the per-budget level.
    """
    return best_over_budgets(scores, included, bound=one_run_epsilon, delta=delta, beta=beta, ks=ks,
                             owner="best_one_run_epsilon")


def best_over_budgets(scores, included, *, bound, delta: float, beta: float, ks: Iterable, owner: str,
                      strength=lambda est: est.epsilon) -> EmpiricalEpsilon:
    """The best of ``bound(correct, guesses, canaries=, delta=, beta=)`` over the guess
    budgets ``ks``, each tested at beta / len(ks) (union bound), at overall confidence
    1 - beta; "best" by ``strength`` (default: the epsilon). Shared by the one-run bounds
    (Steinke et al.'s and the f-DP one)."""
    start = time.perf_counter()
    s = finite_scores(scores, "scores", owner, min_size=1)
    inc = _inclusion(included, len(s), owner)
    beta = check_interval("beta", owner, beta, low=0, high=1, closed="neither")
    budgets = _budgets(list(ks), len(s), owner)
    level = beta / len(budgets)
    best, best_k = None, None
    for kp, km in budgets:
        v, r = one_run_guesses(s, inc, k_plus=kp, k_minus=km)
        est = bound(v, r, canaries=len(s), delta=delta, beta=level)
        if best is None or strength(est) > strength(best):
            best, best_k = est, (kp, km)
    details = {**best.details, "k_plus": best_k[0], "k_minus": best_k[1],
               "budgets_tried": [list(b) for b in budgets], "per_budget_beta": level}
    return EmpiricalEpsilon(best.estimator, best.epsilon, best.delta, "lower-bound", 1.0 - beta, len(s),
                            time.perf_counter() - start, details)
