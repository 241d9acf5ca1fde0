"""f-DP auditing in one run (Mahloujifar, Melis, Chaudhuri 2025, "Auditing f-differential
privacy in one run", ICML; arXiv 2410.22235).

The game is Steinke, Nasr and Jagielski's (:mod:`audit.privacy.estimators.one_run`): m
canaries, each included independently with probability 1/2, one run, the auditor guesses
in/out for r of them and gets v right. What changes is the null hypothesis: instead of
(eps, delta)-DP, the mechanism is assumed f-DP for a trade-off curve f, here the Gaussian
curve G_mu (Dong, Roth, Su 2022). f-DP constrains every canary's guess at once through the
whole curve, not through the one (eps, delta) point a DP claim keeps, and the resulting
bound on "at least v right guesses" is much tighter for mechanisms such as the Gaussian
mechanism and DP-SGD.

The bound (the paper's main theorem with its numerical procedure, for k = 2 possible
answers per canary): write fbar(x) = 1 - f(x) (for G_mu, fbar(x) = Phi(Phi^-1(x) + mu))
and fbar^-1 its inverse. If some f-DP mechanism gave at least v right guesses out of r with
probability tau, then the two sequences defined from i = v down to 0 by

    r_v = tau v / m,   h_v = tau (r - v) / m,
    h_i = max(h_{i+1}, fbar^-1(r_{i+1})),
    r_i = r_{i+1} + i / (r - i) (h_i - h_{i+1})

would satisfy r_0 + h_0 <= r / m. When they do not, the observation has probability below
tau under every f-DP mechanism: f-DP is rejected at level tau. The rejection is monotone in
mu (a larger mu makes fbar^-1 smaller, hence r_0 + h_0 smaller), so the largest mu rejected
at level beta is found by bisection, and the reported epsilon is the epsilon of that mu at
the audit's delta (:func:`audit.privacy.estimators.gdp.gdp_epsilon`): the mechanism is not
mu'-GDP for any mu' below it, with confidence 1 - beta.

What the bound means: "no mu-GDP mechanism with mu below mu_lb would have produced this";
its epsilon is the epsilon of the weakest Gaussian curve the audit rules out. For a
mechanism whose true curve is (close to) Gaussian -- the Gaussian mechanism, DP-SGD with
large batches or many steps -- this is a lower bound on its epsilon; for a curve far from
Gaussian (heavily subsampled DP-SGD, randomized response) it is a statement about the
Gaussian family only, and the details say so ("hypothesis": "mu-GDP").

Project choices:

* Guesses and budgets as in :func:`audit.privacy.estimators.one_run.best_one_run_epsilon`
  (k_plus highest "in", k_minus lowest "out", ties by index; a list of budgets with a
  union bound: each tested at beta / len(ks)).
* Bisection on mu in [0, 50] to 1e-9; mu = 50 (epsilon ~ 1250 at delta = 1e-5) caps the
  bound as the one-run estimator caps epsilon.
* The recursion runs in float64 with fbar^-1 from ``scipy.special`` (``ndtr``/``ndtri``);
  arguments are clipped to [0, 1].
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from scipy.special import ndtr, ndtri

from audit.core.validation import check_interval
from audit.privacy.estimators.gdp import gdp_epsilon
from audit.privacy.estimators.one_run import best_over_budgets
from audit.privacy.estimators.result import EmpiricalEpsilon

_MU_CAP = 50.0


def _gdp_blowup_inverse(x: float, mu: float) -> float:
    """fbar^-1(x) for f = G_mu: Phi(Phi^-1(x) - mu), with x clipped to [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return float(ndtr(ndtri(x) - mu))


def fdp_one_run_rejects(canaries: int, guesses: int, correct: int, mu: float, beta: float) -> bool:
    """Whether ``correct`` of ``guesses`` right is below probability ``beta`` under mu-GDP.

    Mahloujifar, Melis, Chaudhuri 2025 (the numerical bound of their main theorem, k = 2).
    """
    m, r, v = canaries, guesses, correct
    if r == 0 or v == 0:
        return False
    right = beta * v / m
    wrong = beta * (r - v) / m
    for i in range(v - 1, -1, -1):
        new_wrong = max(wrong, _gdp_blowup_inverse(right, mu))
        right = right + i / (r - i) * (new_wrong - wrong)
        wrong = new_wrong
        if right + wrong > r / m:  # only grows from here on: rejected already
            return True
    return right + wrong > r / m


def fdp_one_run_epsilon(correct: int, guesses: int, *, canaries: int, delta: float,
                        beta: float = 0.05) -> EmpiricalEpsilon:
    """Largest mu-GDP rejected at level ``beta`` by ``correct`` of ``guesses``, as epsilon.

    Args:
        correct: v, number of right guesses, 0 <= v <= guesses.
        guesses: r, number of guesses (abstentions excluded), 0 <= r <= canaries.
        canaries: m, number of canaries (each included with probability 1/2), >= 1.
        delta: The delta at which the rejected mu is turned into epsilon, in (0, 1).
        beta: 1 - confidence, in (0, 1).

    Returns:
        An :class:`EmpiricalEpsilon` (estimator "fdp-one-run", nature "lower-bound",
        confidence 1 - beta, trials = canaries); details hold mu_lb, the counts and the
        hypothesis family.
    """
    start = time.perf_counter()
    owner = "fdp_one_run_epsilon"
    m = check_interval("canaries", owner, canaries, kind=int, low=1)
    r = check_interval("guesses", owner, guesses, kind=int, low=0, high=m)
    v = check_interval("correct", owner, correct, kind=int, low=0, high=r)
    delta = check_interval("delta", owner, delta, low=0, high=1, closed="neither")
    beta = check_interval("beta", owner, beta, low=0, high=1, closed="neither")
    lo = 0.0
    if fdp_one_run_rejects(m, r, v, 0.0, beta):
        hi = _MU_CAP
        if fdp_one_run_rejects(m, r, v, hi, beta):
            lo = hi
        else:
            while hi - lo > 1e-9:
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if fdp_one_run_rejects(m, r, v, mid, beta) else (lo, mid)
    eps = gdp_epsilon(lo, delta) if lo > 0 else 0.0
    details = {"guesses": r, "correct": v, "mu_lb": lo, "hypothesis": "mu-GDP"}
    return EmpiricalEpsilon("fdp-one-run", eps, delta, "lower-bound", 1.0 - beta, m,
                            time.perf_counter() - start, details)


def best_fdp_one_run_epsilon(scores, included, *, delta: float, beta: float = 0.05,
                             ks: Iterable = (10, 30, 100, 300)) -> EmpiricalEpsilon:
    """The best f-DP one-run bound over several guess budgets, at overall confidence 1 - beta.

    Args:
        scores: 1-D finite canary scores (higher = more likely included).
        included: The true inclusion bits.
        delta: The delta at which mu is turned into epsilon, in (0, 1).
        beta: 1 - overall confidence; each budget is tested at beta / len(ks).
        ks: Budgets: an int k means k_plus = k_minus = k; a pair is (k_plus, k_minus).

    Returns:
        An :class:`EmpiricalEpsilon` whose details name the best budget and all tried.
    """
    return best_over_budgets(scores, included, bound=fdp_one_run_epsilon, delta=delta, beta=beta, ks=ks,
                             owner="best_fdp_one_run_epsilon", strength=lambda est: est.details["mu_lb"])

