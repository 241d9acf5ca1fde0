"""What the compliance rules read out of ``report.json`` dicts (:mod:`reports.schema`).

Each report is validated before it is read, so the fields the schema requires are indexed
directly. Yielded or returned, in report order then finding order:

* :func:`iter_findings`: (report index, finding) for every finding;
* :func:`iter_dp_claims`: the primary claim of every finding that makes a DP claim, then
  each of its ``alternatives`` that does (e.g. DEeR's "as run" claim);
  :func:`count_without_claim` counts the findings without one;
* :func:`empirical_entries`: one evidence entry per empirical-epsilon verdict. Empirical
  epsilon: the verdicts of ``privacy_audit`` (``fedaudit audit --estimator``), including
  those against alternative claims, and of membership findings'
  ``membership.empirical_epsilon`` when a claim was there to compare. A verdict that is
  neither PASS nor VIOLATION makes the rule NOT EVALUATED unless another one FAILs;
* metrics: :func:`worst_value` is the metric's ``worst`` (falling back to the
  most-leaking non-null ``per_item``), :func:`not_computed_reason` says why a metric has
  none (its note and the report's notes naming it), :func:`metric_named` and
  :func:`is_tpr_at_1pct` pick the metrics a rule compares by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

_TPR_1PCT = re.compile(r"tpr\s*(?:@|_at_|\s+at\s+)\s*([0-9]*\.?[0-9]+)\s*(?:%|pct)\s*_?\s*fpr")


def iter_findings(reports: Sequence[dict]) -> Iterator[tuple[int, dict]]:
    """(report index, finding) for every finding of every report."""
    for i, report in enumerate(reports):
        for f in report["findings"]:
            yield i, f


def iter_dp_claims(reports: Sequence[dict]) -> Iterator[tuple[int, dict, dict, str]]:
    """(report index, finding, claim dict, label) for each DP claim: primary, then alternatives."""
    for i, f in iter_findings(reports):
        claim = f["claim"]
        if not claim.get("has_dp"):
            continue
        yield i, f, claim, claim.get("label") or "primary"
        for alt in claim.get("alternatives") or ():
            if alt.get("has_dp"):
                yield i, f, alt, alt.get("label") or "alternative"


def count_without_claim(reports: Sequence[dict]) -> int:
    """How many findings make no differential-privacy claim."""
    return sum(1 for _, f in iter_findings(reports) if not f["claim"].get("has_dp"))


def empirical_entries(reports: Sequence[dict]) -> list[dict]:
    """One evidence entry per empirical-epsilon verdict: ``privacy_audit`` (primary
    claim, then alternatives), then ``membership.empirical_epsilon``."""
    ev = []
    for i, f in iter_findings(reports):
        audit = f.get("privacy_audit")
        if isinstance(audit, dict):
            est = audit.get("estimate") or {}
            base = {"report": i, "finding": f["id"], "defense": f["defense"]["name"],
                    "estimator": est.get("estimator") or f["attack"]["name"],
                    "epsilon_emp": est.get("epsilon"), "nature": est.get("nature"),
                    "confidence": est.get("confidence")}
            verdict = audit.get("verdict")
            ev.append({**base, "claim": f["claim"].get("label") or "primary",
                       "epsilon_claim": audit.get("epsilon_claim"), "verdict": verdict,
                       "reason": audit.get("reason"), "result": _verdict_result(verdict)})
            for alt in audit.get("alternatives") or ():
                ev.append({**base, "claim": alt.get("label"), "epsilon_claim": alt.get("epsilon_claim"),
                           "verdict": alt.get("verdict"), "reason": alt.get("reason"),
                           "result": _verdict_result(alt.get("verdict"))})
        member = f.get("membership")
        emp = member.get("empirical_epsilon") if isinstance(member, dict) else None
        if isinstance(emp, dict) and emp.get("verdict") is not None:
            ev.append({"report": i, "finding": f["id"], "defense": f["defense"]["name"],
                       "estimator": emp.get("estimator"), "epsilon_emp": emp.get("epsilon_emp"),
                       "nature": "lower-bound", "confidence": emp.get("confidence"),
                       "claim": "example level (membership game)",
                       "epsilon_claim": emp.get("epsilon_claim_example_level"),
                       "verdict": emp.get("verdict"), "reason": emp.get("comparison"),
                       "result": _verdict_result(emp.get("verdict"))})
    return ev


def _verdict_result(verdict: Any) -> str:
    return {"PASS": "pass", "VIOLATION": "fail"}.get(verdict, "not evaluated")


def worst_value(metric: dict) -> float | None:
    """The metric's ``worst``, else the most-leaking non-null ``per_item``, else None."""
    if metric.get("worst") is not None:
        return float(metric["worst"])
    values = [v for v in metric.get("per_item") or () if v is not None]
    if not values:
        return None
    return max(values) if metric["direction"] == "higher-leaks-more" else min(values)


def not_computed_reason(report: dict, metric: dict) -> str:
    """Why ``metric`` has no value: its note and the report's notes naming it."""
    word = metric["name"].split()[0].lower()
    notes = [n for n in report.get("notes") or () if word in n.lower()]
    parts = [metric.get("note")] + [n for n in notes if n != metric.get("note")]
    return "; ".join(p for p in parts if p) or "no value in the report"


def metric_named(name: str) -> Callable[[str], bool]:
    """A matcher of the metric names that, trimmed and lower-cased, are ``name``."""
    return lambda metric_name: metric_name.strip().lower() == name


def is_tpr_at_1pct(name: str) -> bool:
    """Whether a metric name is a TPR at 1% FPR (``TPR @ 1.0% FPR``, ``..._tpr_at_1pct_fpr``)."""
    m = _TPR_1PCT.search(name.lower())
    return m is not None and math.isclose(float(m.group(1)), 1.0)

