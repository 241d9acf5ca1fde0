"""Privacy auditing with one training run (Steinke, Nasr, Jagielski 2023, NeurIPS).

m canaries are each included with probability 1/2; after one run the auditor guesses
"in" for its most confident canaries and "out" for its least confident, abstaining on the
rest. If the mechanism is (eps, delta)-DP, the number of correct guesses V among r guesses
satisfies P[V >= v] <= P[Binomial(r, q) >= v] + 2 m delta alpha_v with
q = e^eps / (1 + e^eps) and alpha_v = max_{1<=i<=v} P[v - i <= Binomial(r, q) < v] / i (the
paper's delta term, its Theorem 3.1 / Proposition 5.3). The bound is the largest eps whose
p-value stays below beta.

Choices: several (k+, k-) guess budgets may be tried; the confidence is kept by a union
bound (each is tested at beta / number of budgets).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.stats import binom

from audit.errors import InvalidParameterError
from audit.estimators.result import EmpiricalEpsilon
from audit.validation import check_interval


def p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """Probability of at least v correct of r guesses under an (eps, delta)-DP null."""
    q = 1.0 / (1.0 + np.exp(-eps))
    tail = float(binom.sf(v - 1, r, q))
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    below = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[B = v-1], P[B = v-2], ...
    alpha = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))
    return min(tail + 2.0 * m * delta * alpha, 1.0)


def one_run_epsilon(correct: int, guesses: int, *, canaries: int, delta: float = 0.0,
                    beta: float = 0.05) -> EmpiricalEpsilon:
    """Largest eps rejected at level beta given ``correct`` of ``guesses`` right."""
    start = time.perf_counter()
    m = check_interval("canaries", "one_run_epsilon", canaries, kind=int, low=1)
    r = check_interval("guesses", "one_run_epsilon", guesses, kind=int, low=0, high=m)
    v = check_interval("correct", "one_run_epsilon", correct, kind=int, low=0, high=r)
    delta = check_interval("delta", "one_run_epsilon", delta, low=0, high=1, closed="left")
    beta = check_interval("beta", "one_run_epsilon", beta, low=0, high=1, closed="neither")
    lo, hi = 0.0, 1.0
    if p_value(m, r, v, 0.0, delta) >= beta:
        eps = 0.0
    else:
        while p_value(m, r, v, hi, delta) < beta and hi < 200:
            lo, hi = hi, hi * 2
        for _ in range(40):
            mid = (lo + hi) / 2
            if p_value(m, r, v, mid, delta) < beta:
                lo = mid
            else:
                hi = mid
        eps = lo
    return EmpiricalEpsilon("one-run", eps, delta, "lower-bound", 1.0 - beta, m,
                            time.perf_counter() - start, {"guesses": r, "correct": v})


def one_run_guesses(scores, included, *, k_plus: int, k_minus: int) -> tuple[int, int]:
    """Guess "in" for the k_plus highest scores, "out" for the k_minus lowest: (correct, guesses)."""
    s = np.asarray(scores, dtype=float)
    inc = np.asarray(included, dtype=bool)
    if s.shape != inc.shape or k_plus + k_minus > len(s):
        raise InvalidParameterError(
            f"The 'k_plus' + 'k_minus' parameters must not exceed the {len(s)} canaries. "
            f"Got {k_plus} + {k_minus} instead."
        )
    order = np.argsort(s, kind="stable")
    correct = int(inc[order[len(s) - k_plus:]].sum()) + int((~inc[order[:k_minus]]).sum())
    return correct, k_plus + k_minus


def best_one_run_epsilon(scores, included, *, delta: float, beta: float = 0.05,
                         ks=(10, 30, 100, 300)) -> EmpiricalEpsilon:
    """The best bound over symmetric guess budgets k+ = k- = k, at overall level beta."""
    start = time.perf_counter()
    ks = list(ks)
    if not ks:
        raise InvalidParameterError("The 'ks' parameter must list at least one budget. Got [] instead.")
    m = len(np.asarray(scores))
    results = []
    for k in ks:
        v, r = one_run_guesses(scores, included, k_plus=k, k_minus=k)
        results.append(one_run_epsilon(v, r, canaries=m, delta=delta, beta=beta / len(ks)))
    best = max(results, key=lambda e: e.epsilon)
    return EmpiricalEpsilon("one-run", best.epsilon, delta, "lower-bound", 1.0 - beta, m,
                            time.perf_counter() - start,
                            {**best.details, "budgets_tried": ks, "per_budget_level": beta / len(ks)})
