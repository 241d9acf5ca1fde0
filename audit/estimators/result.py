"""The common result of every empirical-epsilon estimator."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
