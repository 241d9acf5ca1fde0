"""One-run bound from Gaussian aggregates of canary-aligned signals, for white-box DP-SGD
(after Agrawal et al. 2026, "Let's ask Gauss: improved one-run privacy auditing", arXiv
2606.12733; ``../shared/specs/auditing.md``).

In white-box DP-SGD a canary's signal at step t is the privatized gradient read along the
canary's direction (a Dirac canary: one coordinate). Summed over the steps, the signal of
an excluded canary is the sum of the Gaussian noise, N(a, s^2); an included canary adds its
clipped contribution at every step it takes part in, a shift d s. The sum is Gaussian when
the canary is in every step (Nasr et al. 2023, "Tight auditing of differentially private
machine learning") and asymptotically Gaussian (central limit theorem) when it is sampled;
a Gaussian shift of d standard deviations is exactly d-GDP (Dong, Roth, Su 2022), so a
mechanism that is mu-GDP cannot produce d > mu. The auditor does not threshold canaries (the
one-run game of Steinke et al.); it estimates d from all of them at once: with n1 included
and n0 excluded canaries, the two-sample t statistic

    t = (mean_in - mean_out) / (s_pooled sqrt(1/n1 + 1/n0))

has a noncentral t distribution with n1 + n0 - 2 degrees of freedom and noncentrality
d / sqrt(1/n1 + 1/n0). The lower confidence bound d_lb solves P_d[T >= t] = beta (exact
for equal-variance Gaussian signals), and the reported epsilon is that of d_lb-GDP at the
audit's delta.

Assumption (stated in the details of every result): the per-canary aggregates are
independent and Gaussian with a common variance. It holds for the Gaussian mechanism and
for Dirac canaries in coordinates no other example touches when clipping binds; for a
signal far from Gaussian (few steps, heavy subsampling, a non-Gaussian noise bug) the
bound is an asymptotic approximation, and the estimators that assume nothing about the
scores (``one-run``, ``fdp-one-run``) are the ones to sign.

Project choices: the pooled standard deviation (not Welch's), so the equal-variance model is
the one tested; d is capped at 50; at least 2 canaries on each side.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.optimize import brentq
from scipy.stats import nct

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval
from audit.privacy.estimators.gdp import gdp_epsilon
from audit.privacy.estimators.one_run import _inclusion
from audit.privacy.estimators.result import EmpiricalEpsilon, finite_scores

_D_CAP = 50.0
ASSUMPTION = "canary aggregates independent Gaussians with a common variance (exact for Gaussian shifts, asymptotic otherwise)"


def gaussian_aggregate_epsilon(scores, included, *, delta: float, beta: float = 0.05) -> EmpiricalEpsilon:
    """Lower confidence bound on the canaries' Gaussian shift d, as epsilon at ``delta``.

    Args:
        scores: 1-D finite per-canary aggregated signals (higher = more likely included).
        included: The true inclusion bits, same length; at least 2 of each.
        delta: The delta at which d_lb is turned into epsilon, in (0, 1).
        beta: 1 - confidence, in (0, 1).

    Returns:
        An :class:`EmpiricalEpsilon` (estimator "gaussian-aggregate", nature
        "lower-bound", confidence 1 - beta); details: d_hat, d_lb, t, the counts and the
        assumption.
    """
    start = time.perf_counter()
    owner = "gaussian_aggregate_epsilon"
    s = finite_scores(scores, "scores", owner, min_size=4)
    inc = _inclusion(included, len(s), owner)
    delta = check_interval("delta", owner, delta, low=0, high=1, closed="neither")
    beta = check_interval("beta", owner, beta, low=0, high=1, closed="neither")
    n1, n0 = int(inc.sum()), int((~inc).sum())
    if n1 < 2 or n0 < 2:
        raise InvalidParameterError(
            f"The 'included' parameter of {owner} must mark at least 2 canaries in and 2 out. "
            f"Got {n1} in and {n0} out instead."
        )
    x1, x0 = s[inc], s[~inc]
    df = n1 + n0 - 2
    pooled = math.sqrt((((x1 - x1.mean()) ** 2).sum() + ((x0 - x0.mean()) ** 2).sum()) / df)
    scale = math.sqrt(1.0 / n1 + 1.0 / n0)
    diff = float(x1.mean() - x0.mean())
    if pooled == 0.0:
        t = math.inf if diff > 0 else (0.0 if diff == 0 else -math.inf)
    else:
        t = diff / (pooled * scale)
    d_hat = 0.0 if pooled == 0.0 and diff == 0 else (t * scale if math.isfinite(t) else _D_CAP * np.sign(t))

    def excess(d: float) -> float:  # P_d[T >= t] - beta, increasing in d
        return float(nct.sf(t, df, d / scale)) - beta

    if not math.isfinite(t):
        d_lb = _D_CAP if t > 0 else 0.0
    elif excess(0.0) >= 0.0:
        d_lb = 0.0
    elif excess(_D_CAP) <= 0.0:
        d_lb = _D_CAP
    else:
        d_lb = float(brentq(excess, 0.0, _D_CAP, xtol=1e-10))
    eps = gdp_epsilon(d_lb, delta) if d_lb > 0 else 0.0
    details = {"d_hat": float(d_hat), "d_lb": d_lb, "t": float(t), "included": n1, "excluded": n0,
               "hypothesis": "mu-GDP", "assumption": ASSUMPTION}
    return EmpiricalEpsilon("gaussian-aggregate", eps, delta, "lower-bound", 1.0 - beta, len(s),
                            time.perf_counter() - start, details)
