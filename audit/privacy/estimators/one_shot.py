"""One-shot empirical privacy estimation for federated learning (Andrew, Kairouz, Oh,
Oprea, McMahan, Suriyakumar 2024, ICLR; arXiv 2302.03098).

k canary clients each submit a fixed, independent random unit vector as their update.
After the single training run the auditor computes the cosine between
the final model delta and every inserted canary, and -- as the null -- the cosine to fresh
random unit vectors that were never inserted (in high dimension d these are very nearly
N(0, 1/d)). Fitting a Gaussian to each sample and reading the pair as
a Gaussian-shift test gives

    mu = (mean_canary - mean_null) / std_null,    epsilon = eps(mu-GDP, delta).

The paper shows the estimate is correct for the Gaussian mechanism as the dimension grows.
It is an *estimate*, not a bound: ``nature`` is "estimate" and
``confidence`` is None.

Project choices:

* Equal-variance (GDP) reading, as in the project spec: the paper's released code converts
  the two fitted Gaussians N(mean_null, std_null^2) and N(mean_canary, std_canary^2) to
  epsilon with their (possibly different) standard deviations; we use mu-GDP with the null's
  std, which agrees when the two stds match (the Gaussian-mechanism regime). The canary std
  and the ratio of the two stds are reported in ``details`` so a mismatch is visible.
* Sample standard deviations use ddof = 1. If the null cosines have zero spread the canary
  cosines' std is used instead (and if both are 0, mu is +inf when the means differ, 0 when
  they do not).
* A negative mu (canaries less aligned than random directions) is reported in ``details``
  but epsilon uses max(mu, 0).
* delta must be in (0, 1): at delta = 0 every mu > 0 gives epsilon = inf.
"""

from __future__ import annotations

import math
import time

import torch

from audit.privacy.estimators.gdp import gdp_epsilon
from audit.privacy.estimators.result import EmpiricalEpsilon, finite_scores
from audit.core.validation import check_interval

OWNER = "one_shot_epsilon"


def random_unit_vectors(k: int, dim: int, *, generator: torch.Generator,
                        dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``k`` independent, uniformly random unit vectors in R^dim (normalised Gaussians).

    Args:
        k: Number of vectors, >= 1.
        dim: Dimension, >= 1.
        generator: The torch generator to draw from (for reproducibility).
        dtype: Floating dtype of the result (float64 by default).

    Returns:
        A tensor of shape (k, dim) whose rows have unit l2 norm.
    """
    k = check_interval("k", "random_unit_vectors", k, kind=int, low=1)
    dim = check_interval("dim", "random_unit_vectors", dim, kind=int, low=1)
    v = torch.randn((k, dim), generator=generator, dtype=torch.float64)
    norms = v.norm(dim=1, keepdim=True)
    while bool((norms == 0).any()):  # probability ~0; redraw any all-zero row
        v[norms[:, 0] == 0] = torch.randn((int((norms == 0).sum()), dim), generator=generator,
                                          dtype=torch.float64)
        norms = v.norm(dim=1, keepdim=True)
    return (v / norms).to(dtype)


def one_shot_epsilon(canary_cosines, null_cosines, *, delta: float) -> EmpiricalEpsilon:
    """Epsilon estimate from the cosines of inserted canaries and of never-inserted ones.

    Args:
        canary_cosines: 1-D cosines between the final model delta and each inserted canary
            (at least 2 finite values).
        null_cosines: 1-D cosines between the final model delta and fresh random unit
            vectors never inserted (at least 2 finite values).
        delta: Target delta, in (0, 1).

    Returns:
        An :class:`EmpiricalEpsilon` (nature "estimate", confidence None, trials = number of
        canaries) with details mu, the means and stds of both samples.
    """
    start = time.perf_counter()
    c = finite_scores(canary_cosines, "canary_cosines", OWNER)
    n = finite_scores(null_cosines, "null_cosines", OWNER)
    delta = check_interval("delta", OWNER, delta, low=0, high=1, closed="neither")
    mean_c, mean_n = float(c.mean()), float(n.mean())
    std_c, std_n = float(c.std(ddof=1)), float(n.std(ddof=1))
    spread = std_n if std_n > 0 else std_c
    gap = mean_c - mean_n
    if spread > 0:
        mu = gap / spread
    else:
        mu = 0.0 if gap == 0 else math.copysign(math.inf, gap)
    eps = gdp_epsilon(max(mu, 0.0), delta)
    details = {
        "mu": mu, "canary_mean": mean_c, "null_mean": mean_n, "canary_std": std_c, "null_std": std_n,
        "std_used": "null" if std_n > 0 else "canary",
        "std_ratio": std_c / std_n if std_n > 0 else None, "nulls": len(n),
    }
    return EmpiricalEpsilon("one-shot", eps, delta, "estimate", None, len(c),
                            time.perf_counter() - start, details)
