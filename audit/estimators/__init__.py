"""Estimators of empirical epsilon: lower bounds (Clopper-Pearson distinguishing test,
one-run auditing) and estimates (one-shot FL, GDP fit), each returning an
:class:`EmpiricalEpsilon` that says which it is."""

from audit.estimators.clopper_pearson import clopper_pearson_epsilon
from audit.estimators.gdp import gdp_delta, gdp_epsilon, gdp_tradeoff
from audit.estimators.gdp_fit import gdp_fit_epsilon
from audit.estimators.one_run import best_one_run_epsilon, one_run_epsilon, one_run_guesses
from audit.estimators.one_shot import one_shot_epsilon, random_unit_vectors
from audit.estimators.result import EmpiricalEpsilon

ESTIMATORS = ("clopper-pearson", "one-run", "one-shot", "gdp-fit")

__all__ = [
    "ESTIMATORS", "EmpiricalEpsilon", "best_one_run_epsilon", "clopper_pearson_epsilon",
    "gdp_delta", "gdp_epsilon", "gdp_fit_epsilon", "gdp_tradeoff", "one_run_epsilon",
    "one_run_guesses", "one_shot_epsilon", "random_unit_vectors",
]
