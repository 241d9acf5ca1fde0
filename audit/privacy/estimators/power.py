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
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from audit.core.validation import check_interval
from audit.privacy.estimators.clopper_pearson import clopper_pearson_epsilon
from audit.privacy.estimators.one_run import best_one_run_epsilon

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


def power_verdict(verdict: str, claimed_epsilon: float | None, ceiling: float) -> str:
    """``verdict``, except a PASS whose claim is above ``ceiling`` reads :data:`INCONCLUSIVE`."""
    if verdict == "PASS" and claimed_epsilon is not None and claimed_epsilon > ceiling:
        return INCONCLUSIVE
    return verdict
