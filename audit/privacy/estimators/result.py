"""The common result of every empirical-epsilon estimator, and the checks of score arrays
that the estimators share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audit.core.errors import InvalidParameterError

NATURES = ("lower-bound", "estimate")


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python numbers/lists, tuples into lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclass(frozen=True)
class EmpiricalEpsilon:
    """An empirical epsilon with its nature (bound or estimate), confidence and cost.

    Attributes:
        estimator: Which estimator produced it: "clopper-pearson", "one-run", "one-shot",
            "gdp-fit" (callers may add a suffix such as "-input" for a variant).
        epsilon: The empirical epsilon, >= 0 (0 when the evidence shows nothing; may be
            ``inf`` for an estimate when the two samples separate perfectly).
        delta: The delta at which ``epsilon`` is stated.
        nature: "lower-bound" (holds with probability >= ``confidence``) or "estimate"
            (a point estimate under a model, no guarantee).
        confidence: 1 - alpha (or 1 - beta) for a bound; None for an estimate.
        trials: Number of trials (both sides together) or canaries used.
        compute_s: Wall-clock seconds spent in the estimator.
        details: Estimator-specific numbers (thresholds, counts, mu, ...).
    """

    estimator: str
    epsilon: float
    delta: float
    nature: str
    confidence: float | None
    trials: int
    compute_s: float
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.nature not in NATURES:
            raise InvalidParameterError(
                f"The 'nature' parameter of EmpiricalEpsilon must be a str among "
                f"{{'lower-bound', 'estimate'}}. Got {self.nature!r} instead."
            )
        if math.isnan(self.epsilon) or self.epsilon < 0:
            raise InvalidParameterError(
                f"The 'epsilon' parameter of EmpiricalEpsilon must be a float >= 0. "
                f"Got {self.epsilon!r} instead."
            )

    def to_dict(self) -> dict:
        """JSON-ready form (plain Python numbers, lists and dicts)."""
        return {
            "estimator": self.estimator,
            "epsilon": float(self.epsilon),
            "delta": float(self.delta),
            "nature": self.nature,
            "confidence": None if self.confidence is None else float(self.confidence),
            "trials": int(self.trials),
            "compute_s": float(self.compute_s),
            "details": _jsonable(dict(self.details)),
        }


def finite_scores(x: Any, name: str, owner: str = "the estimator", *, min_size: int = 2) -> np.ndarray:
    """``x`` as a 1-D float array of at least ``min_size`` finite values.

    Raises:
        InvalidParameterError: naming ``name`` of ``owner`` and describing what was given.
    """
    constraint = f"a 1-D array of at least {min_size} finite numbers"
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be {constraint}. Got {x!r:.80} instead."
        ) from None
    if a.ndim != 1 or a.size < min_size or not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        got = f"an array of shape {a.shape}" + (f" with {bad} NaN or infinite values" if bad else "")
        if a.ndim == 0:
            got = f"{x!r:.80}"
        raise InvalidParameterError(f"The {name!r} parameter of {owner} must be {constraint}. Got {got} instead.")
    return a
