"""The privacy claim a defense makes: (epsilon, delta) for a unit of privacy, or none.

The numbers come from an accountant library (see :mod:`audit.privacy.accounting.accountants`), never from
hand-written arithmetic; the claim records which accountant and how many compositions so a
reader can re-derive it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

from audit.core.errors import InvalidParameterError

#: the levels of a unit of privacy (:attr:`PrivacyClaim.unit_level`)
UNIT_LEVELS = ("record", "client")
#: neighbouring relations (:attr:`PrivacyClaim.adjacency`)
ADJACENCIES = ("add-remove", "replace-one")


class TrustModel(str, Enum):
    """Whom the user must trust for the claim to hold."""

    LOCAL = "local"  # noise added on the client: holds against the server
    CENTRAL = "central"  # noise added by a trusted server: holds against observers of the aggregate


@dataclass(frozen=True)
class PrivacyClaim:
    """A defense's differential-privacy claim, or an explicit statement that it makes none."""

    has_dp: bool
    statement: str
    epsilon: float | None = None
    delta: float | None = None
    unit: str | None = None
    trust_model: TrustModel | None = None
    compositions: int | None = None
    accountant: str | None = None
    mechanism: str | None = None
    #: per-part claims of a composed mechanism (e.g. one entry per layer: name, epsilon,
    #: noise multiplier, clip norm, budget share), JSON-ready; the parts compose to
    #: ``epsilon``
    parts: tuple[dict, ...] = ()
    #: a short name when a defense makes several claims ("official accounting", "as run")
    label: str | None = None
    #: other claims for the same run, e.g. the epsilon of the mechanism as it actually runs
    #: beside the one the defense's own accounting states (DEeR); each is audited too
    alternatives: tuple["PrivacyClaim", ...] = ()
    #: the unit's level, for the ledger and the accounting lint: "record" (one training
    #: example) or "client" (all of one client's data); None when not stated
    unit_level: str | None = None
    #: the neighbouring relation the accountant analysed: "add-remove" or "replace-one"
    adjacency: str | None = None
    #: what the accounting assumes of the run, one short phrase each (the sampling it
    #: amplifies by, the steps it composed, who must be trusted ...), for the ledger
    assumptions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.unit_level not in (None, *UNIT_LEVELS):
            raise InvalidParameterError(
                f"The 'unit_level' parameter of PrivacyClaim must be None or one of "
                f"{', '.join(map(repr, UNIT_LEVELS))}. Got {self.unit_level!r} instead.")
        if self.adjacency not in (None, *ADJACENCIES):
            raise InvalidParameterError(
                f"The 'adjacency' parameter of PrivacyClaim must be None or one of "
                f"{', '.join(map(repr, ADJACENCIES))}. Got {self.adjacency!r} instead.")
        if isinstance(self.assumptions, str) or not all(isinstance(a, str) for a in self.assumptions):
            raise InvalidParameterError(
                f"The 'assumptions' parameter of PrivacyClaim must be a tuple of str. Got "
                f"{self.assumptions!r} instead.")

    @classmethod
    def none(cls, statement: str) -> "PrivacyClaim":
        """A defense with no DP claim (FedAvg, FedQSN...)."""
        return cls(has_dp=False, statement=statement)

    def to_dict(self) -> dict:
        """JSON-ready form for the report."""
        d = asdict(self)
        d["trust_model"] = self.trust_model.value if self.trust_model else None
        d["alternatives"] = [a.to_dict() for a in self.alternatives]
        d["assumptions"] = list(self.assumptions)
        return d
