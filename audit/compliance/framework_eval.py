"""Framework clauses judged against the findings and the policy rules' results.

:func:`evaluate_frameworks` gives, per framework (:mod:`audit.compliance.framework_file`), one
result per clause: SATISFIED, NOT SATISFIED, NOT EVIDENCED or OUT OF SCOPE, with why and the
evidence (each entry: the finding, the policy rule that judged it, the values compared and a
one-line ``detail``). The rules' evidence entries (:mod:`audit.compliance.results`) are the
only judgements: a framework adds no threshold of its own.

Choices of this module:

* A clause evidenced by findings is about the findings its selectors match (without
  selectors: the findings its rules' evidence names). Each such finding is judged by the
  entries of the clause's rules that name it: it fails if one fails, passes if one passes
  and none fails, and is not judged otherwise (the policy sets none of the rules, no rule
  reads what it measures, or the value was not computed).
* NOT SATISFIED if a finding fails; else NOT EVIDENCED if no finding is matched (the
  clause's ``not_evidenced`` text says what is missing) or one is not judged (a SATISFIED
  must cover every finding of its kind, so an unjudged leak cannot hide behind a pass);
  else SATISFIED.
* ``all_of``: NOT SATISFIED if one of its clauses is, SATISFIED if all are, else NOT
  EVIDENCED. OUT OF SCOPE clauses are never judged, so never SATISFIED.
* The statuses of frameworks do not enter the report's verdict: the policy's rules are
  the gate, the frameworks say what that evidence means for each clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit.compliance.evidence import iter_findings
from audit.compliance.framework_file import Clause, Framework
from audit.compliance.results import RuleResult

SATISFIED, NOT_SATISFIED, NOT_EVIDENCED, OUT_OF_SCOPE = "SATISFIED", "NOT SATISFIED", "NOT EVIDENCED", "OUT OF SCOPE"
CLAUSE_STATUSES = (SATISFIED, NOT_SATISFIED, NOT_EVIDENCED, OUT_OF_SCOPE)
_HIDDEN = ("report", "finding", "result")


def _g(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def detail(rule: str, e: dict) -> str:
    """One line saying what the rule compared in evidence entry ``e``."""
    if "metric" in e:
        limit = f"<= {_g(e['max'])}" if "max" in e else f">= {_g(e.get('min'))}"
        if e.get("worst") is None:
            return f"{e['metric']} not computed ({e.get('note') or 'no value'}; needs {limit})"
        return f"{e['metric']} worst {_g(e['worst'])} (needs {limit})"
    if "epsilon_emp" in e:
        return (f"epsilon_emp {_g(e['epsilon_emp'])} ({e.get('estimator')}) vs claimed {_g(e.get('epsilon_claim'))} "
                f"({e.get('claim')} claim): {e.get('verdict')}")
    if rule == "max_epsilon_claim":
        return f"claimed epsilon {_g(e.get('epsilon_claim'))} ({e.get('claim')} claim; needs <= {_g(e.get('max_epsilon_claim'))})"
    if rule == "unit_of_privacy":
        return (f"unit {e.get('unit')!r} ({e.get('unit_level') or 'not recognised'} level; needs "
                f"{e.get('required')})")
    if rule == "require_dp_claim":
        return "makes a DP claim" if e.get("has_dp") else "makes no DP claim"
    if rule in ("required_threat_models", "required_attacks"):
        what = "threat_model" if rule == "required_threat_models" else "attack"
        return f"required {what.replace('_', ' ')} {e.get(what)}: {e.get('findings')} finding(s)"
    return ", ".join(f"{k} {_g(v)}" for k, v in e.items() if k not in _HIDDEN)


def _entry(rule: str, e: dict) -> dict:
    return {"report": e.get("report"), "finding": e.get("finding"), "rule": rule, "result": e["result"],
            "detail": detail(rule, e), "values": {k: v for k, v in e.items() if k not in _HIDDEN}}


def _result(clause: Clause, status: str, why: str, evidence: list[dict]) -> dict:
    return {"id": clause.id, "title": clause.title, "paraphrase": clause.paraphrase, "note": clause.note,
            "status": status, "why": why, "rules": list(clause.rules), "evidence": evidence}


def _unjudged_why(label: str, mine: list[dict], clause: Clause, used: list[str]) -> str:
    if mine:
        return f"{label}: " + "; ".join(f"{e['rule']} not evaluated ({e['detail']})" for e in mine)
    if used:
        return f"{label}: none of the rules {', '.join(clause.rules)} reads what it measures"
    if clause.rules:
        return f"{label}: the policy sets none of the rules {', '.join(clause.rules)}"
    return f"{label}: no policy rule judges this kind of finding"


def _judge(clause: Clause, results: dict[str, RuleResult], reports: Sequence[dict]) -> dict:
    used = [r for r in clause.rules if r in results]
    unset = [r for r in clause.rules if r not in results]
    entries = [_entry(r, e) for r in used for e in results[r].evidence]
    matched: dict[tuple, dict] = {}
    if clause.findings:
        matched = {(i, f["id"]): f for i, f in iter_findings(reports)
                   if any(s.matches(f) for s in clause.findings)}
        entries = [e for e in entries if (e["report"], e["finding"]) in matched]
    # the unit judged: a finding, or an entry naming none (a required name no finding covers)
    keys = [(e["report"], e["finding"]) if e["finding"] is not None else (None, f"{e['rule']}#{n}")
            for n, e in enumerate(entries)]
    units = list(matched) if clause.findings else list(dict.fromkeys(keys))
    unset_text = f" The policy does not set {', '.join(unset)}." if unset else ""
    if not units:
        return _result(clause, NOT_EVIDENCED, clause.not_evidenced + unset_text, entries)
    fails = [(k, e) for k, e in zip(keys, entries) if e["result"] == "fail"]
    if fails:
        return _result(clause, NOT_SATISFIED, f"{len({k for k, _ in fails})} of {len(units)} finding(s) fail: "
                       + "; ".join(f"{e['finding'] or 'no finding'} ({e['rule']}: {e['detail']})" for _, e in fails)
                       + ".", entries)
    passed = {k for k, e in zip(keys, entries) if e["result"] == "pass"}
    unjudged = [u for u in units if u not in passed]
    if unjudged:
        why = []
        for u in unjudged:
            f = matched.get(u)
            label = f"{u[1]} ({f['attack']['family']}, {f['attack']['name']})" if f else str(u[1])
            why.append(_unjudged_why(label, [e for k, e in zip(keys, entries) if k == u], clause, used))
        evidence = entries + [{"report": u[0], "finding": u[1], "rule": None, "result": "not judged",
                               "detail": "no judgement by the policy's rules", "values": {}}
                              for u in unjudged if u not in keys]
        return _result(clause, NOT_EVIDENCED, f"{len(unjudged)} of {len(units)} finding(s) not judged: "
                       + "; ".join(why) + "." + unset_text, evidence)
    return _result(clause, SATISFIED, f"All {len(units)} finding(s) it covers pass the policy's rules ("
                   + ", ".join(sorted({e["rule"] for e in entries if e["result"] == "pass"})) + ")." + unset_text,
                   entries)


def _all_of(clause: Clause, done: dict[str, dict]) -> dict:
    parts = [done[c] for c in clause.all_of]
    evidence = [{"report": None, "finding": None, "rule": None, "clause": p["id"],
                 "result": {SATISFIED: "pass", NOT_SATISFIED: "fail"}.get(p["status"], "not judged"),
                 "detail": f"clause {p['id']}: {p['status']}", "values": {}} for p in parts]
    listing = "; ".join(f"{p['id']}: {p['status']}" for p in parts)
    if any(p["status"] == NOT_SATISFIED for p in parts):
        return _result(clause, NOT_SATISFIED, f"A clause it needs is not satisfied ({listing}).", evidence)
    if all(p["status"] == SATISFIED for p in parts):
        return _result(clause, SATISFIED, f"Every clause it needs is satisfied ({listing}).", evidence)
    return _result(clause, NOT_EVIDENCED, f"Not every clause it needs is satisfied ({listing}).", evidence)


def evaluate_framework(framework: Framework, results: Sequence[RuleResult], reports: Sequence[dict]) -> dict:
    """The JSON-ready section of one framework: its citation, the count of each status and
    one result per clause (in file order), judged against ``reports`` (the report dicts the
    rule ``results`` were evaluated on, in the same order)."""
    by_rule = {r.rule: r for r in results}
    done: dict[str, dict] = {}
    for c in framework.clauses:
        if c.kind == "out_of_scope":
            done[c.id] = _result(c, OUT_OF_SCOPE, c.out_of_scope, [])
        elif c.kind == "evidence":
            done[c.id] = _judge(c, by_rule, reports)
    for c in framework.clauses:
        if c.kind == "all_of":
            done[c.id] = _all_of(c, done)
    clauses = [done[c.id] for c in framework.clauses]
    s = framework.source
    return {"id": framework.id, "name": framework.name, "version": framework.version, "date": framework.date,
            "description": framework.description,
            "source": {"title": s.title, "publisher": s.publisher, "year": s.year, "url": s.url},
            "file": framework.path, "builtin": framework.builtin, "sha256": framework.sha256,
            "counts": {st: sum(1 for c in clauses if c["status"] == st) for st in CLAUSE_STATUSES},
            "clauses": clauses}


def evaluate_frameworks(frameworks: Sequence[Framework], results: Sequence[RuleResult],
                        reports: Sequence[dict]) -> list[dict]:
    """:func:`evaluate_framework` for each framework, in order."""
    return [evaluate_framework(f, results, reports) for f in frameworks]
