"""One-shot empirical privacy estimation for federated learning (Andrew, Kairouz, Oh,
Oprea, McMahan, Suriyakumar 2024, ICLR; arXiv 2302.03098).

Canary clients submit fixed random unit directions; after training, the cosines between
what the adversary observes and each canary are compared with the cosines to fresh random
directions that were never inserted (null ~ N(0, 1/d)). Fitting Gaussians gives
mu = (mean_canary - mean_null) / std_null, and epsilon follows from mu-GDP at delta. It is
an *estimate*, not a bound.

Choices: if the null cosines have zero spread the canaries' std is used instead.
"""

from __future__ import annotations

import time

import torch

from audit.estimators.gdp import gdp_epsilon
from audit.estimators.result import EmpiricalEpsilon, finite_scores
from audit.validation import check_interval


def random_unit_vectors(k: int, dim: int, *, generator: torch.Generator) -> torch.Tensor:
    """``k`` independent uniformly random unit vectors in R^dim, shape (k, dim)."""
    v = torch.randn((k, dim), generator=generator, dtype=torch.float64)
    return v / v.norm(dim=1, keepdim=True)


def one_shot_epsilon(canary_cosines, null_cosines, *, delta: float) -> EmpiricalEpsilon:
    """GDP-based epsilon estimate from canary and null cosines."""
    start = time.perf_counter()
    c, n = finite_scores(canary_cosines, "canary_cosines"), finite_scores(null_cosines, "null_cosines")
    delta = check_interval("delta", "one_shot_epsilon", delta, low=0, high=1, closed="neither")
    spread = float(n.std(ddof=1)) or float(c.std(ddof=1)) or 1e-12
    mu = (float(c.mean()) - float(n.mean())) / spread
    eps = gdp_epsilon(max(mu, 0.0), delta)
    return EmpiricalEpsilon("one-shot", eps, delta, "estimate", None, len(c), time.perf_counter() - start,
                            {"mu": mu, "canary_mean": float(c.mean()), "null_mean": float(n.mean()),
                             "null_std": spread})
