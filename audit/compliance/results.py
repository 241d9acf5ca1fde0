"""The outcome of judging a policy: one :class:`RuleResult` per rule, and how they fold.

A rule is PASS, FAIL or NOT EVALUATED. :func:`overall` folds the results into one status,
:func:`severity` orders them; :func:`rule_status` gives one rule's status from its evidence.

* Status of a rule: FAIL if any evidence fails; else NOT EVALUATED if no finding carries
  what the rule needs (or, for the metric and empirical-epsilon rules, one carries it
  uncomputed); else PASS. :func:`overall`: FAIL if any rule fails, PASS if every evaluated
  rule passes (NOT EVALUATED rules are listed, not counted), NOT EVALUATED if none was
  evaluated. A PASS is no proof of privacy: it says these audits found no stronger
  evidence of leakage than the policy allows.
* Evidence entries are flat JSON dicts, one per finding (and claim) compared, with
  ``report`` (the index in the sequence given to :func:`audit.compliance.rules.evaluate`),
  ``finding`` (its id), the values compared and ``result`` (``"pass"``, ``"fail"`` or
  ``"not evaluated"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from audit.core.errors import invalid

PASS, FAIL, NOT_EVALUATED = "PASS", "FAIL", "NOT EVALUATED"
STATUSES = (PASS, FAIL, NOT_EVALUATED)
_SEVERITY = {PASS: 0, NOT_EVALUATED: 1, FAIL: 2}


@dataclass(frozen=True)
class RuleResult:
    """One rule judged: ``status`` is PASS, FAIL or NOT EVALUATED; ``evidence`` holds flat
    JSON dicts (one per finding or claim compared: ``report``, ``finding``, values,
    ``result``); ``why`` is one sentence."""

    rule: str
    title: str
    status: str
    evidence: list[dict] = field(default_factory=list)
    why: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise invalid("status", "RuleResult", "one of {'PASS', 'FAIL', 'NOT EVALUATED'}", self.status)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: rule, title, status, evidence, why."""
        return {"rule": self.rule, "title": self.title, "status": self.status,
                "evidence": [dict(e) for e in self.evidence], "why": self.why}


def severity(result: RuleResult | dict | str) -> int:
    """FAIL 2 > NOT EVALUATED 1 > PASS 0, for ordering (``sorted(..., key=severity,
    reverse=True)`` puts failures first). Takes a :class:`RuleResult`, its ``to_dict()``
    or a status."""
    status = result if isinstance(result, str) else (
        result.get("status") if isinstance(result, dict) else result.status)
    if status not in _SEVERITY:
        raise invalid("result", "severity", "a RuleResult or a status among {'PASS', 'FAIL', 'NOT EVALUATED'}",
                      status)
    return _SEVERITY[status]


def overall(results: Sequence[RuleResult]) -> str:
    """FAIL if any rule fails; PASS if every evaluated rule passes (at least one);
    NOT EVALUATED if none was evaluated (or ``results`` is empty)."""
    statuses = [r.status for r in results]
    if FAIL in statuses:
        return FAIL
    return PASS if PASS in statuses else NOT_EVALUATED


def rule_status(evidence: list[dict], *, none_why: str, fail_why: str, pass_why: str,
                unevaluated_why: str = "") -> tuple[str, str]:
    """One rule's (status, why) from its evidence entries' ``result``: FAIL with
    ``fail_why`` if any fails, NOT EVALUATED with ``none_why`` if there is none or with
    ``unevaluated_why`` if one is not evaluated, else PASS with ``pass_why``."""
    results = [e["result"] for e in evidence]
    if "fail" in results:
        return FAIL, fail_why
    if not evidence:
        return NOT_EVALUATED, none_why
    if "not evaluated" in results:
        return NOT_EVALUATED, unevaluated_why
    return PASS, pass_why
