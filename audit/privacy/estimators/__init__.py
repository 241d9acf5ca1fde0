"""Estimators of empirical epsilon, as pure functions.

Lower bounds (hold with a stated confidence): the Clopper-Pearson distinguishing test
(:func:`clopper_pearson_epsilon`) and one-run auditing (:func:`one_run_epsilon`,
:func:`best_one_run_epsilon`). Estimates (no guarantee, a model's reading of the data): the
one-shot FL estimate (:func:`one_shot_epsilon`) and the GDP fit of a trade-off curve
(:func:`gdp_fit_epsilon`). Each returns an :class:`EmpiricalEpsilon` that says which it is.
The mu-GDP closed forms (:func:`gdp_delta`, :func:`gdp_epsilon`, :func:`gdp_tradeoff`) turn
the estimates' mu into epsilon.
"""

from audit.privacy.estimators.clopper_pearson import clopper_pearson_epsilon, clopper_pearson_upper
from audit.privacy.estimators.gdp import gdp_delta, gdp_epsilon, gdp_tradeoff
from audit.privacy.estimators.gdp_fit import gdp_fit_epsilon
from audit.privacy.estimators.one_run import (
    best_one_run_epsilon,
    one_run_epsilon,
    one_run_guesses,
    one_run_p_value,
)
from audit.privacy.estimators.one_shot import one_shot_epsilon, random_unit_vectors
from audit.privacy.estimators.result import EmpiricalEpsilon

ESTIMATORS = ("clopper-pearson", "one-run", "one-shot", "gdp-fit")

__all__ = [
    "ESTIMATORS", "EmpiricalEpsilon", "best_one_run_epsilon", "clopper_pearson_epsilon",
    "clopper_pearson_upper", "gdp_delta", "gdp_epsilon", "gdp_fit_epsilon", "gdp_tradeoff",
    "one_run_epsilon", "one_run_guesses", "one_run_p_value", "one_shot_epsilon",
    "random_unit_vectors",
]
