"""The compliance rules and :func:`evaluate`: a policy judged against audit reports.

:func:`evaluate` judges one or more ``report.json`` dicts (:mod:`reports.schema`) against a
:class:`~audit.compliance.policy.Policy` (the rules and what each demands are listed in
:mod:`audit.compliance.policy`) and gives one :class:`~audit.compliance.results.RuleResult`
per rule the policy uses: PASS, FAIL or NOT EVALUATED, with the evidence (finding ids and
the values compared, read by :mod:`audit.compliance.evidence`) and why.

Choices of this module:

* Each rule answers one question; ``unit_of_privacy`` is its own rule beside
  ``max_epsilon_claim`` (an epsilon means nothing without its unit, so set both; units are
  matched as :mod:`audit.compliance.units` says).
* Claims: the primary claim of every finding and each of its ``alternatives`` (e.g.
  DEeR's "as run" claim) is checked; a finding without a DP claim is left to
  ``require_dp_claim`` (the epsilon and unit rules then say how many they skipped). A DP
  claim without an epsilon FAILs ``max_epsilon_claim``. Epsilons are compared as stated:
  a replace-one epsilon is not converted to add-or-remove (the neighbouring relation found
  in the unit text is shown in the evidence).
* Empirical epsilon: the verdicts :func:`~audit.compliance.evidence.empirical_entries`
  collects; one that is neither PASS nor VIOLATION makes the rule NOT EVALUATED unless
  another one FAILs.
* Metric rules use the metric's ``worst`` (falling back to the most-leaking non-null
  ``per_item``); only the whole-image metrics named exactly ``psnr``/``ssim``/``lpips``
  count (not the region metrics ``psnr (PSI)``...), and for extraction only ``gap_closed``
  (not its curves ``gap_closed_by_coalition``...). A metric present but not computed (LPIPS
  null: no weights, ``--no-lpips``) gives NOT EVALUATED with the reason from the report,
  unless a computed value already FAILs: a worst case over findings is not known while
  one of them is missing.
* Thresholds are inclusive: ``worst <= max`` passes, ``worst >= min`` passes.
* How a rule's evidence makes its status, and the rules fold into one, is in
  :mod:`audit.compliance.results`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit.compliance.evidence import (
    count_without_claim,
    empirical_entries,
    is_tpr_at_1pct,
    iter_dp_claims,
    iter_findings,
    metric_named,
    not_computed_reason,
    worst_value,
)
from audit.compliance.policy import Policy
from audit.compliance.results import NOT_EVALUATED, RuleResult, rule_status
from audit.compliance.units import LEVEL_COVERS, neighbouring_relation, unit_level
from audit.core.errors import InvalidParameterError, invalid


def _g(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def _require_dp_claim(policy: Policy, reports: Sequence[dict]) -> RuleResult:
    ev = [{"report": i, "finding": f["id"], "defense": f["defense"]["name"],
           "has_dp": bool(f["claim"].get("has_dp")), "statement": f["claim"].get("statement"),
           "result": "pass" if f["claim"].get("has_dp") else "fail"} for i, f in iter_findings(reports)]
    bad = sorted({e["defense"] for e in ev if e["result"] == "fail"})
    status, why = rule_status(
        ev, none_why="The reports hold no finding.",
        fail_why=(f"{len(bad)} defense(s) make no differential-privacy claim: {', '.join(bad)} (findings "
                  + ", ".join(e["finding"] for e in ev if e["result"] == "fail") + ")."),
        pass_why=f"Every audited defense ({len(ev)} finding(s)) makes a differential-privacy claim.")
    return RuleResult("require_dp_claim", "Every audited defense makes a DP claim", status, ev, why)


def _skipped(reports: Sequence[dict]) -> str:
    n = count_without_claim(reports)
    return f" {n} finding(s) without a DP claim are left to require_dp_claim." if n else ""


def _max_epsilon_claim(policy: Policy, reports: Sequence[dict]) -> RuleResult:
    limit = policy.max_epsilon_claim
    ev = []
    for i, f, claim, label in iter_dp_claims(reports):
        eps = claim.get("epsilon")
        ev.append({"report": i, "finding": f["id"], "defense": f["defense"]["name"], "claim": label,
                   "epsilon_claim": eps, "delta": claim.get("delta"), "unit": claim.get("unit"),
                   "neighbouring": neighbouring_relation(claim), "trust_model": claim.get("trust_model"),
                   "max_epsilon_claim": limit,
                   "result": "pass" if eps is not None and eps <= limit else "fail"})
    fails = [e for e in ev if e["result"] == "fail"]
    status, why = rule_status(
        ev, none_why="No finding carries a differential-privacy claim, so no epsilon to compare."
        + _skipped(reports),
        fail_why=f"{len(fails)} claim(s) exceed epsilon {_g(limit)} or state none: "
        + "; ".join(f"{e['finding']} ({e['claim']}): epsilon {_g(e['epsilon_claim'])}" for e in fails)
        + "." + _skipped(reports),
        pass_why=f"Every claimed epsilon ({len(ev)} claim(s); largest "
        f"{_g(max((e['epsilon_claim'] for e in ev), default=0))}) is at most {_g(limit)}."
        + _skipped(reports))
    return RuleResult("max_epsilon_claim", f"Claimed epsilon at most {_g(limit)}", status, ev, why)


def _unit_of_privacy(policy: Policy, reports: Sequence[dict]) -> RuleResult:
    need = policy.unit_of_privacy
    ev = []
    for i, f, claim, label in iter_dp_claims(reports):
        level = unit_level(claim.get("unit"))
        ev.append({"report": i, "finding": f["id"], "defense": f["defense"]["name"], "claim": label,
                   "unit": claim.get("unit"), "unit_level": level, "required": need,
                   "result": "pass" if level is not None and need in LEVEL_COVERS[level] else "fail"})
    fails = [e for e in ev if e["result"] == "fail"]
    status, why = rule_status(
        ev, none_why="No finding carries a differential-privacy claim, so no unit of privacy."
        + _skipped(reports),
        fail_why=f"{len(fails)} claim(s) do not protect one {need}: "
        + "; ".join(f"{e['finding']} ({e['claim']}): unit {e['unit']!r} is "
                    + (f"{e['unit_level']}-level" if e["unit_level"] else "not stated or not recognised")
                    for e in fails) + "." + _skipped(reports),
        pass_why=f"Every claim ({len(ev)}) protects at least one {need}." + _skipped(reports))
    return RuleResult("unit_of_privacy", f"Unit of privacy: one {need} (or coarser)", status, ev, why)


def _epsilon_emp_within_claim(policy: Policy, reports: Sequence[dict]) -> RuleResult:
    ev = empirical_entries(reports)
    fails = [e for e in ev if e["result"] == "fail"]
    odd = [e for e in ev if e["result"] == "not evaluated"]
    status, why = rule_status(
        ev, none_why="No finding carries an empirical-epsilon verdict (run fedaudit audit with "
        "--estimator against a defense with a DP claim).",
        fail_why="VIOLATION: " + "; ".join(
            f"{e['finding']} ({e['estimator']}): epsilon_emp {_g(e['epsilon_emp'])} > epsilon_claim "
            f"{_g(e['epsilon_claim'])} ({e['claim']} claim)" for e in fails) + ".",
        pass_why=f"Every empirical-epsilon verdict ({len(ev)}) is PASS: no estimate contradicts "
        "its claim (which is no proof of privacy).",
        unevaluated_why="Some empirical-epsilon verdicts are neither PASS nor VIOLATION: " + "; ".join(
            f"{e['finding']}: {e['verdict']!r} ({e['reason']})" for e in odd) + ".")
    return RuleResult("epsilon_emp_within_claim", "Empirical epsilon within the claimed epsilon",
                      status, ev, why)


def _metric_rule(reports: Sequence[dict], *, rule: str, title: str, label: str, limit: float,
                 upper: bool, match) -> RuleResult:
    ev = []
    for i, f in iter_findings(reports):
        for m in f["metrics"]:
            if not match(m["name"]):
                continue
            worst = worst_value(m)
            base = m.get("baseline") or {}
            entry = {"report": i, "finding": f["id"], "attack": f["attack"]["name"],
                     "metric": m["name"], "worst": worst, "mean": m.get("mean"),
                     "baseline_worst": base.get("worst"), ("max" if upper else "min"): limit}
            if worst is None:
                entry.update(result="not evaluated", note=not_computed_reason(reports[i], m))
            else:
                ok = worst <= limit if upper else worst >= limit
                entry["result"] = "pass" if ok else "fail"
                if m.get("note"):
                    entry["note"] = m["note"]
            ev.append(entry)
    cmp_, bad = ("at most", ">") if upper else ("at least", "<")
    fails = [e for e in ev if e["result"] == "fail"]
    odd = [e for e in ev if e["result"] == "not evaluated"]
    computed = [e["worst"] for e in ev if e["worst"] is not None]
    extreme = (max if upper else min)(computed) if computed else None
    status, why = rule_status(
        ev, none_why=f"No finding carries the metric {label}.",
        fail_why=f"{label} {bad} {_g(limit)} in " + "; ".join(
            f"{e['finding']} ({e['metric']}: worst {_g(e['worst'])})" for e in fails) + ".",
        pass_why=f"The worst {label} over {len(ev)} finding(s) is {_g(extreme)}, {cmp_} {_g(limit)}.",
        unevaluated_why=f"{label} was not computed in " + "; ".join(
            f"{e['finding']} ({e['note']})" for e in odd) + (
            f"; the computed worst case ({_g(extreme)}) is {cmp_} {_g(limit)} but the worst case over "
            "all findings is unknown." if computed else "."))
    return RuleResult(rule, title, status, ev, why)


def _required(reports: Sequence[dict], *, rule: str, title: str, what: str, names: tuple[str, ...],
              get) -> RuleResult:
    found: dict[str, list[tuple[int, str]]] = {}
    for i, f in iter_findings(reports):
        found.setdefault(get(f), []).append((i, f["id"]))
    ev = []
    for name in names:
        hits = found.get(name, [])
        ev.append({what: name, "finding": hits[0][1] if hits else None,
                   "report": hits[0][0] if hits else None, "findings": len(hits),
                   "result": "pass" if hits else "fail"})
    missing = [e[what] for e in ev if e["result"] == "fail"]
    present = ", ".join(sorted(found)) or "none"
    if not found:
        return RuleResult(rule, title, NOT_EVALUATED, ev, "The reports hold no finding.")
    status, why = rule_status(
        ev, none_why="",
        fail_why=f"No finding covers the required {what.replace('_', ' ')}(s) "
        + ", ".join(missing) + f" (the reports cover: {present}).",
        pass_why=f"Every required {what.replace('_', ' ')} is covered by some finding.")
    return RuleResult(rule, title, status, ev, why)


def evaluate(policy: Policy, reports: Sequence[dict]) -> list[RuleResult]:
    """Judge ``reports`` (decoded ``report.json`` dicts, each validated first) against
    ``policy``: one :class:`RuleResult` per rule the policy uses, in
    :data:`~audit.compliance.policy.RULE_KEYS` order.

    Raises:
        InvalidParameterError: ``policy`` is not a :class:`Policy`, ``reports`` is not a
            sequence of report dicts, or a report is not valid (the message names its index).
    """
    from reports.schema import validate_report

    if not isinstance(policy, Policy):
        raise invalid("policy", "evaluate", "a Policy (see load_policy)", type(policy).__name__)
    if isinstance(reports, (dict, str, bytes)) or not isinstance(reports, Sequence):
        raise invalid("reports", "evaluate", "a sequence (list) of report dicts", type(reports).__name__)
    for i, report in enumerate(reports):
        try:
            validate_report(report)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"reports[{i}]: {exc}") from None
    out: list[RuleResult] = []
    for key in policy.rules:
        if key == "require_dp_claim":
            out.append(_require_dp_claim(policy, reports))
        elif key == "max_epsilon_claim":
            out.append(_max_epsilon_claim(policy, reports))
        elif key == "unit_of_privacy":
            out.append(_unit_of_privacy(policy, reports))
        elif key == "epsilon_emp_within_claim":
            out.append(_epsilon_emp_within_claim(policy, reports))
        elif key == "max_psnr":
            out.append(_metric_rule(reports, rule=key, label="PSNR", limit=policy.max_psnr, upper=True,
                                    title=f"Worst-case reconstruction PSNR at most {_g(policy.max_psnr)} dB",
                                    match=metric_named("psnr")))
        elif key == "max_ssim":
            out.append(_metric_rule(reports, rule=key, label="SSIM", limit=policy.max_ssim, upper=True,
                                    title=f"Worst-case reconstruction SSIM at most {_g(policy.max_ssim)}",
                                    match=metric_named("ssim")))
        elif key == "min_lpips":
            out.append(_metric_rule(reports, rule=key, label="LPIPS", limit=policy.min_lpips, upper=False,
                                    title=f"Worst-case reconstruction LPIPS at least {_g(policy.min_lpips)}",
                                    match=metric_named("lpips")))
        elif key == "max_tpr_at_1pct_fpr":
            out.append(_metric_rule(reports, rule=key, label="TPR at 1% FPR", upper=True,
                                    limit=policy.max_tpr_at_1pct_fpr,
                                    title=f"Membership TPR at 1% FPR at most {_g(policy.max_tpr_at_1pct_fpr)}",
                                    match=is_tpr_at_1pct))
        elif key == "max_extraction_gap_closed":
            out.append(_metric_rule(reports, rule=key, label="extraction gap_closed", upper=True,
                                    limit=policy.max_extraction_gap_closed,
                                    title="Model extraction: share of the proxy-to-global gap closed at most "
                                    f"{_g(policy.max_extraction_gap_closed)}",
                                    match=metric_named("gap_closed")))
        elif key == "required_threat_models":
            out.append(_required(reports, rule=key, what="threat_model", names=policy.required_threat_models,
                                 title="Required threat models covered: " + ", ".join(policy.required_threat_models),
                                 get=lambda f: f["threat_model"]["name"]))
        elif key == "required_attacks":
            out.append(_required(reports, rule=key, what="attack", names=policy.required_attacks,
                                 title="Required attacks run: " + ", ".join(policy.required_attacks),
                                 get=lambda f: f["attack"]["name"]))
    return out
