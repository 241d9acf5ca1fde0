"""The claimed-vs-empirical ledger: one row per (run, claim, empirical epsilon), across runs.

A row sets side by side

* **the claim**: epsilon, delta, unit (its text and its level, record or client), adjacency,
  accountant, trust model and what the accounting assumes (``claim.assumptions``);
* **the evidence**: the estimator, epsilon_emp with its interval (a lower bound at
  confidence c is the one-sided interval ``[epsilon_emp, inf)``; a point estimate has
  none), the audit's power ceiling and its trials or canaries;
* **the verdict** (PASS, VIOLATION or INCONCLUSIVE, :mod:`audit.privacy.auditing.verdicts`)
  and the **accounting lint** findings of the run with their severity
  (:mod:`audit.privacy.lint`; ``privacy_audit.lint`` of the finding).

Rows come from the findings that carry a ``privacy_audit`` entry: one for the primary claim
and one per alternative claim (``privacy_audit.alternatives``, matched by label to
``claim.alternatives`` for the claim's full description). :func:`ledger_rows` builds them
from a report's findings (``report.json`` keeps them under ``ledger``; ``fedaudit ledger
RUN_DIRS...`` and the compliance report build them across runs, naming each run).

Project choices: an older report without ``claim.unit_level`` / ``adjacency`` /
``assumptions`` gives ``None`` / empty there, never a guess; the lint of a row is the lint
of its run (every claim of the run shares it); rows keep the report's finding order.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

LINT_SEVERITIES = ("error", "warning", "info")


def _claim_entry(claim: dict) -> dict:
    return {
        "label": claim.get("label"),
        "epsilon": claim.get("epsilon"),
        "delta": claim.get("delta"),
        "unit": claim.get("unit"),
        "unit_level": claim.get("unit_level"),
        "adjacency": claim.get("adjacency"),
        "accountant": claim.get("accountant"),
        "trust_model": claim.get("trust_model"),
        "assumptions": [str(a) for a in claim.get("assumptions") or []],
    }


def _evidence(estimator: Any, epsilon: Any, nature: Any, confidence: Any, ceiling: Any,
              trials: Any) -> dict:
    eps = None if epsilon is None else float(epsilon)
    interval = None
    if eps is not None and nature == "lower-bound":
        interval = [eps, None]  # one-sided: [epsilon_emp, inf) at `confidence`
    return {"estimator": estimator, "nature": nature, "epsilon_emp": eps, "interval": interval,
            "confidence": confidence, "power_ceiling": ceiling,
            "trials": None if trials is None else int(trials)}


def lint_summary(lint: Iterable[dict]) -> dict[str, int]:
    """Counts of the lint findings per severity (every severity present, 0 when none)."""
    counts = dict.fromkeys(LINT_SEVERITIES, 0)
    for item in lint:
        sev = item.get("severity")
        if sev in counts:
            counts[sev] += 1
    return counts


def ledger_rows(findings: Iterable[dict], *, run: str | None = None) -> list[dict]:
    """The ledger rows of ``findings`` (those with a ``privacy_audit`` verdict), each naming
    ``run`` (None within a single report)."""
    rows: list[dict] = []
    for f in findings:
        audit = f.get("privacy_audit")
        if not isinstance(audit, dict) or audit.get("verdict") is None:
            continue
        est = audit.get("estimate") or {}
        lint = [dict(x) for x in audit.get("lint") or []]

        def common() -> dict:  # every row its own objects: editing one row leaves the others
            return {"run": run, "finding": f["id"], "defense": f["defense"]["name"],
                    "lint": [dict(x) for x in lint], "lint_summary": lint_summary(lint)}

        primary = _evidence(est.get("estimator"), est.get("epsilon"), est.get("nature"),
                            est.get("confidence"), audit.get("power_ceiling"), est.get("trials"))
        rows.append({**common(), "claim": _claim_entry(f["claim"]), "evidence": copy.deepcopy(primary),
                     "verdict": audit["verdict"], "reason": audit.get("reason")})
        full = {c.get("label"): c for c in f["claim"].get("alternatives") or []}
        for alt in audit.get("alternatives") or []:
            claim = full.get(alt["label"]) or {
                "label": alt["label"], "epsilon": alt.get("epsilon_claim"), "delta": alt.get("delta"),
                "unit": alt.get("unit"), "trust_model": alt.get("trust_model")}
            evidence = copy.deepcopy(primary) if "epsilon_emp" not in alt else _evidence(
                alt.get("estimator"), alt["epsilon_emp"], est.get("nature"), est.get("confidence"),
                alt.get("power_ceiling"), alt.get("trials", est.get("trials")))
            rows.append({**common(), "claim": {**_claim_entry(claim), "trust_model": alt.get("trust_model")},
                         "evidence": evidence, "verdict": alt["verdict"], "reason": alt.get("reason")})
    return rows


__all__ = ["LINT_SEVERITIES", "ledger_rows", "lint_summary"]
