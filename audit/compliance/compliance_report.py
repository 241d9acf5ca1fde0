"""The compliance report: one or more audit runs judged against a policy, for the people who
sign off a deployment (``../shared/specs/auditing.md``, "Reports and compliance").

Built from run directories (each holds the ``report.json`` that ``fedaudit audit`` wrote,
validated first, and its other artifacts) and a policy (:mod:`audit.compliance.policy`). Sections, in
reading order:

1. **verdict**: one paragraph — PASS only when every rule the evidence could evaluate
   passes; the failed rules named first;
2. **policy**: every rule with PASS / FAIL / NOT EVALUATED, its evidence and why, failures
   first;
3. **defenses**: per defense, its claim (epsilon, delta, unit of privacy, accountant, trust
   model), the empirical epsilons (estimator, nature, confidence, verdict) and the attack
   results beside their trivial baselines;
4. **findings**, ordered by severity (critical: evidence contradicts a DP claim; high: a
   finding a failed rule cites; medium: an attack beats its trivial baseline; info: the
   rest);
5. **NIST SP 800-226 questions**: unit of privacy; epsilon and delta and how they were
   accounted; trust model; empirical evidence for the claim; implementation hazards
   (floating point, randomness source, side channels) — each says which evidence answers it
   or that none does (the questions, and the hazards' answers, are read from the built-in
   framework file ``frameworks/nist-sp-800-226.toml``);
6. **frameworks**: per framework the policy selects (``frameworks``; default: every built-in
   one, :mod:`audit.compliance.framework_file`), each clause SATISFIED, NOT SATISFIED, NOT
   EVIDENCED or OUT OF SCOPE with the findings and rules that evidence it
   (:mod:`audit.compliance.framework_eval`); they do not enter the verdict;
7. **reproducibility**: each run's command, seed, package versions, device, git revision,
   and the SHA-256 of every artifact in the run directories.

After the defenses, ``ledger``: the claimed-vs-empirical ledger of every run
(:func:`reports.ledger.ledger_rows`, each row naming its run directory: claim, evidence,
verdict and the run's accounting lint, side by side).

The JSON form (``kind: "compliance-report"``) is the source of truth; its JSON Schema is
published at ``reports/schemas/compliance-report-<version>.schema.json`` and every report is
validated against it (:func:`reports.compliance_schema.validate_compliance`) before it is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from audit.compliance.framework_eval import evaluate_frameworks
from audit.compliance.framework_file import builtin_framework, resolve_frameworks
from audit.compliance.results import overall, severity
from audit.compliance.rules import evaluate
from audit.core.errors import InvalidParameterError
from reports.compliance_schema import KIND, SCHEMA_VERSION, validate_compliance
from reports.io import load_report
from reports.ledger import ledger_rows

SEVERITIES = ("critical", "high", "medium", "info")


# -- inputs ---------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """A run directory: its validated ``report.json`` and the SHA-256 of every file in it."""
    root = Path(run_dir)
    path = root / "report.json"
    if not root.is_dir():
        raise InvalidParameterError(f"The run directory must exist. Got {str(root)!r} (no such directory) instead.")
    if not path.is_file():
        raise InvalidParameterError(
            f"The run directory must hold the report.json that fedaudit audit wrote. Got "
            f"{str(root)!r} (no report.json) instead.")
    report = load_report(path)
    artifacts = [{"path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size}
                 for p in sorted(root.rglob("*")) if p.is_file()]
    return {"dir": str(root), "report": report, "artifacts": artifacts}


# -- sections -------------------------------------------------------------------------------------


def _metric_rows(finding: dict) -> list[dict]:
    out = []
    for m in finding["metrics"]:
        base = m.get("baseline") or {}
        out.append({"name": m["name"], "unit": m["unit"], "direction": m["direction"], "mean": m["mean"],
                    "worst": m["worst"], "baseline_mean": base.get("mean"),
                    "baseline": base.get("description")})
    return out


def _beats_baseline(finding: dict) -> bool:
    """Whether some metric's worst case leaks more than its trivial baseline's worst."""
    for m in finding["metrics"]:
        base = m.get("baseline") or {}
        w, b = m.get("worst"), base.get("worst")
        if w is None or b is None or m["name"].startswith("epsilon_emp"):
            continue
        if (m["direction"] == "higher-leaks-more" and w > b) or (m["direction"] == "lower-leaks-more" and w < b):
            return True
    return False


def _severity(finding: dict, cited: bool) -> str:
    audit = finding.get("privacy_audit") or {}
    if audit.get("verdict") == "VIOLATION":
        return "critical"
    if cited:
        return "high"
    return "medium" if _beats_baseline(finding) else "info"


def _defenses(runs: Sequence[dict]) -> list[dict]:
    table: dict[str, dict] = {}
    for run in runs:
        for f in run["report"]["findings"]:
            name = f["defense"]["name"]
            # one entry per configuration: a sweep's runs of one defense at two epsilons differ
            key = json.dumps([name, f["defense"]["params"], f["claim"].get("epsilon")], sort_keys=True,
                             default=str)
            entry = table.setdefault(key, {"name": name, "params": f["defense"]["params"],
                                           "claim": f["claim"], "empirical": [], "attacks": []})
            audit = f.get("privacy_audit")
            if audit:
                est = audit.get("estimate") or {}
                entry["empirical"].append({
                    "finding": f["id"], "estimator": est.get("estimator"), "epsilon_emp": est.get("epsilon"),
                    "nature": est.get("nature"), "confidence": est.get("confidence"),
                    "epsilon_claim": audit.get("epsilon_claim"), "verdict": audit.get("verdict"),
                    "reason": audit.get("reason")})
            else:
                entry["attacks"].append({"finding": f["id"], "attack": f["attack"]["name"],
                                         "family": f["attack"]["family"],
                                         "threat_model": f["threat_model"]["name"],
                                         "metrics": _metric_rows(f)})
    return list(table.values())


def _nist(defenses: list[dict], runs: Sequence[dict]) -> list[dict]:
    """One entry per NIST SP 800-226 question (the clauses of the built-in framework file, in
    its order): the answer and the evidence, or that none."""
    clauses = {c.id: c for c in builtin_framework("nist-sp-800-226").clauses}
    dp = [d for d in defenses if d["claim"].get("has_dp")]
    nodp = [d["name"] for d in defenses if not d["claim"].get("has_dp")]
    ids = lambda ds: [d["name"] for d in ds]  # noqa: E731
    out = []

    def q(key, answer, evidence):
        out.append({"id": key, "question": clauses[key].title, "answer": answer, "evidence": evidence,
                    "answered": bool(evidence)})

    q("unit-of-privacy",
      "; ".join(f"{d['name']}: {d['claim'].get('unit') or 'not stated'}" for d in dp)
      + (f". No DP claim, so no unit: {', '.join(nodp)}." if nodp else "") if dp or nodp else
      "No defense was audited.", ids(dp))
    q("epsilon-delta",
      "; ".join(f"{d['name']}: epsilon {d['claim'].get('epsilon')}, delta {d['claim'].get('delta')}, "
                f"accountant {d['claim'].get('accountant') or 'not stated'}, "
                f"{d['claim'].get('compositions') or '?'} composition(s)" for d in dp)
      or "No audited defense claims differential privacy.", ids(dp))
    q("trust-model",
      "; ".join(f"{d['name']}: {d['claim'].get('trust_model') or 'not stated'}" for d in dp)
      or "No DP claim, so no trust model.", ids(dp))
    emp = [e for d in defenses for e in d["empirical"]]
    q("empirical-evidence",
      "; ".join(f"{e['finding']}: epsilon_emp {e['epsilon_emp']:.4g} ({e['nature']}, {e['estimator']}) vs "
                f"claim {e['epsilon_claim']}: {e['verdict']}" for e in emp if e["epsilon_emp"] is not None)
      or "No run estimated an empirical epsilon (run fedaudit audit with --estimator).",
      [e["finding"] for e in emp])
    for key in ("floating-point", "randomness", "side-channels"):  # no run tests these hazards
        q(key, clauses[key].out_of_scope, [])
    return out


def _verdict(status: str, results: Sequence[dict], defenses: list[dict]) -> str:
    failed = [r for r in results if r["status"] == "FAIL"]
    unevaluated = [r for r in results if r["status"] == "NOT EVALUATED"]
    names = ", ".join(d["name"] for d in defenses) or "no defense"
    if status == "FAIL":
        head = (f"FAIL: {len(failed)} of {len(results)} policy rule(s) fail for {names}: "
                + "; ".join(f"{r['title']} ({r['why']})" for r in failed) + ".")
    elif status == "PASS":
        head = (f"PASS: every policy rule the evidence could evaluate passes for {names} "
                f"({len(results) - len(unevaluated)} of {len(results)} evaluated).")
    else:
        head = f"NOT EVALUATED: the evidence answers none of the {len(results)} policy rule(s) for {names}."
    tail = (f" {len(unevaluated)} rule(s) could not be evaluated: "
            + ", ".join(r["title"] for r in unevaluated) + "." if unevaluated and status != "NOT EVALUATED" else "")
    return head + tail + (" A pass is no proof of privacy: it says these audits found no stronger "
                          "evidence of leakage than the policy allows.")


def build_compliance(runs: Sequence[dict], *, policy, policy_source: str, command: str) -> dict[str, Any]:
    """The compliance report dict (validated against the published JSON Schema)."""
    reports = [r["report"] for r in runs]
    frameworks = resolve_frameworks(policy.frameworks, owner=f"policy {policy.source}")
    results = sorted(evaluate(policy, reports), key=severity, reverse=True)
    rule_dicts = [r.to_dict() for r in results]
    status = overall(results)
    cited = {(e.get("report"), str(e.get("finding"))) for r in rule_dicts if r["status"] == "FAIL"
             for e in r["evidence"] if isinstance(e, dict) and e.get("finding") and e.get("result") == "fail"}
    defenses = _defenses(runs)
    findings = []
    for i, run in enumerate(runs):
        for f in run["report"]["findings"]:
            audit = f.get("privacy_audit") or {}
            findings.append({"id": f["id"], "title": f["title"], "run": run["dir"],
                             "severity": _severity(f, (i, f["id"]) in cited),
                             "defense": f["defense"]["name"], "attack": f["attack"]["name"],
                             "threat_model": f["threat_model"]["name"],
                             "verdict": audit.get("verdict"), "metrics": _metric_rows(f)})
    findings.sort(key=lambda f: SEVERITIES.index(f["severity"]))
    report = {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "title": "fedaudit compliance report",
        "verdict": {"status": status, "summary": _verdict(status, rule_dicts, defenses)},
        "policy": {"source": policy_source, "rules": rule_dicts},
        "defenses": defenses,
        "ledger": [row for run in runs for row in ledger_rows(run["report"]["findings"], run=run["dir"])],
        "findings": findings,
        "nist_sp_800_226": _nist(defenses, runs),
        "frameworks": evaluate_frameworks(frameworks, results, reports),
        "reproducibility": {
            "command": command,
            "runs": [{"dir": r["dir"], "command": r["report"]["command"], "seed": r["report"]["seed"],
                      "created_utc": r["report"].get("created_utc"), "environment": r["report"]["environment"]}
                     for r in runs],
            "artifacts": [a for r in runs for a in r["artifacts"]],
        },
    }
    return validate_compliance(report)


def finding_images(run_dirs: Sequence[str | Path]) -> dict[str, dict]:
    """The images of the runs' findings (finding id -> image), to illustrate a compliance report."""
    out: dict[str, dict] = {}
    for d in run_dirs:
        for f in load_report(Path(d) / "report.json")["findings"]:
            if f.get("images"):
                out[f["id"]] = f["images"]
    return out
