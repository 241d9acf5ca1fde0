"""The common result of every empirical-epsilon estimator."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from audit.errors import InvalidParameterError


@dataclass(frozen=True)
class EmpiricalEpsilon:
    """An empirical epsilon with its nature (bound or estimate), confidence and cost."""

    estimator: str  # "clopper-pearson" | "one-run" | "one-shot" | "gdp-fit"
    epsilon: float
    delta: float
    nature: str  # "lower-bound" | "estimate"
    confidence: float | None
    trials: int
    compute_s: float
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def finite_scores(x, name: str) -> np.ndarray:
    """``x`` as a flat float array of at least 2 finite values, else an error naming it."""
    a = np.asarray(x, dtype=float).reshape(-1)
    if a.size < 2 or not np.isfinite(a).all():
        raise InvalidParameterError(
            f"The {name!r} parameter must hold at least 2 finite values. Got {a.size} values"
            f"{'' if np.isfinite(a).all() else ' with a NaN or infinity'} instead."
        )
    return a
