"""Audit power: the largest epsilon an audit of a given size could certify at all.

A lower bound from m canaries (one-run auditing, Steinke, Nasr, Jagielski 2023) or n trials
per side (the Clopper-Pearson distinguishing test) cannot exceed what a *perfectly leaky*
mechanism would give: every canary guessed right, the two sides perfectly separated. That
ceiling is computed here by feeding the estimator exactly such perfect inputs
(``../shared/specs/auditing.md``, "Power ceiling"), so it follows the estimator's own rules
(budgets, union bound, the selection/held-out split). A claim above the ceiling cannot be
refuted by that audit: its PASS means "too weak to say" (:func:`power_verdict`).

Choices of this project: the one-run ceiling uses exactly half of the canaries included
(the expected split) and the estimator's default guess budgets; the Clopper-Pearson ceiling
uses the estimator's default split and seed. Both are deterministic.
:func:`estimate_ceiling` reads the ceiling of a finished estimate from its own details (its
canaries, guess budgets and level; its held-out counts), so the ceiling printed beside an
epsilon_emp is the one of the audit that produced it. The f-DP one-run bound's ceiling is
computed the same way with its own test; the Gaussian aggregate's is the epsilon of its cap
on the shift (a perfectly separated sample gives an infinite t statistic), so it never
makes a claim inconclusive; estimates (one-shot, GDP fit) have none.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from audit.core.validation import check_interval
from audit.privacy.estimators.clopper_pearson import clopper_pearson_epsilon
from audit.privacy.estimators.clopper_pearson import clopper_pearson_upper, epsilon_from_rates
from audit.privacy.estimators.fdp_one_run import fdp_one_run_epsilon
from audit.privacy.estimators.gaussian_aggregate import _D_CAP
from audit.privacy.estimators.gdp import gdp_epsilon
from audit.privacy.estimators.one_run import best_one_run_epsilon, one_run_epsilon
from audit.privacy.estimators.result import EmpiricalEpsilon

#: the verdict of a PASS whose claim lies above the audit's power ceiling
INCONCLUSIVE = "INCONCLUSIVE"


def one_run_ceiling(canaries: int, *, delta: float, beta: float = 0.05,
                    ks: Iterable = (10, 30, 100, 300)) -> float:
    """The one-run bound of a perfectly leaky mechanism with ``canaries`` canaries (the
    budgets of ``ks`` that fit ``canaries``: ``k_plus + k_minus <= canaries``)."""
    m = check_interval("canaries", "one_run_ceiling", canaries, kind=int, low=2)
    fitting = [k for k in ks if (sum(k) if isinstance(k, (tuple, list)) else 2 * k) <= m]
    ks = fitting or [(m // 2, m - m // 2)]
    included = np.zeros(m, dtype=bool)
    included[: m // 2] = True
    scores = included.astype(float)  # perfect: every included canary scores above every other
    return best_one_run_epsilon(scores, included, delta=delta, beta=beta, ks=ks).epsilon


def clopper_pearson_ceiling(trials: int, *, delta: float, alpha: float = 0.05) -> float:
    """The Clopper-Pearson bound of a perfectly separable pair with ``trials`` per side."""
    n = check_interval("trials", "clopper_pearson_ceiling", trials, kind=int, low=4)
    return clopper_pearson_epsilon(np.ones(n), np.zeros(n), delta=delta, alpha=alpha).epsilon


def _budget_ceiling(est: EmpiricalEpsilon, bound) -> float:
    d = est.details
    beta = d.get("per_budget_beta", 1.0 - float(est.confidence))
    budgets = d.get("budgets_tried") or [[d.get("guesses", 0), 0]]
    m = int(est.trials)
    best = 0.0
    for kp, km in budgets:
        r = min(int(kp) + int(km), m)
        if r > 0:
            best = max(best, bound(r, r, canaries=m, delta=float(est.delta), beta=float(beta)).epsilon)
    return best


def estimate_ceiling(est: EmpiricalEpsilon) -> float | None:
    """The largest epsilon the audit behind ``est`` could have certified: its estimator fed
    a perfectly leaky mechanism's outcome with the same canaries / held-out trials, guess
    budgets and confidence. None for an estimate (no confidence, no ceiling) and for an
    estimator this module does not know."""
    if est.nature != "lower-bound" or est.confidence is None:
        return None
    name = est.estimator.removesuffix("-input")
    d = est.details
    if name == "one-run":
        return _budget_ceiling(est, one_run_epsilon)
    if name == "fdp-one-run":
        return _budget_ceiling(est, fdp_one_run_epsilon)
    if name == "gaussian-aggregate":
        return gdp_epsilon(_D_CAP, float(est.delta))
    if name == "clopper-pearson" and "heldout_with" in d and "heldout_without" in d:
        a = float(d.get("alpha_per_rate", (1.0 - float(est.confidence)) / 2))
        fnr = clopper_pearson_upper(0, int(d["heldout_with"]), a)
        fpr = clopper_pearson_upper(0, int(d["heldout_without"]), a)
        return max(float(epsilon_from_rates(fpr, fnr, float(est.delta))), 0.0)
    return None


def power_verdict(verdict: str, claimed_epsilon: float | None, ceiling: float) -> str:
    """``verdict``, except a PASS whose claim is above ``ceiling`` reads :data:`INCONCLUSIVE`."""
    if verdict == "PASS" and claimed_epsilon is not None and claimed_epsilon > ceiling:
        return INCONCLUSIVE
    return verdict
