"""Compliance policies: thresholds a user sets in a file, judged against audit reports.

A policy is a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file of flat ``key = value``
rules, every one optional; a policy lists the ones it wants (``../shared/specs/auditing.md``,
"Reports and compliance"). :func:`load_policy` reads and validates it (an unknown key, a
value of the wrong type or out of range is an :class:`~audit.errors.InvalidParameterError`
naming the key, the value and the file); ``load_policy(None)`` gives the default policy
shipped at ``audit/policies/default.toml``. :func:`evaluate` judges one or more
``report.json`` dicts (:mod:`reports.schema`) and gives one :class:`RuleResult` per rule:
PASS, FAIL or NOT EVALUATED, with the evidence (finding ids and the values compared) and
why. :func:`overall` folds them into one status, :func:`severity` orders them.

Rules, in the order they are evaluated (the questions of NIST SP 800-226, "Guidelines for
Evaluating Differential Privacy Guarantees", 2025, that they answer are given in
brackets):

``require_dp_claim`` (bool)
    every audited defense makes a differential-privacy claim; one without (FedAvg,
    FedQSN, ...) FAILs it [SP 800-226: is there a DP guarantee at all].
``max_epsilon_claim`` (number >= 0)
    every claimed epsilon is at most this [the privacy parameters epsilon and delta].
``unit_of_privacy`` (``"client"`` or ``"example"``; aliases below)
    every claim protects at least this unit [the unit of privacy: whose data the
    guarantee protects]. See "Unit matching".
``epsilon_emp_within_claim`` (bool)
    every empirical-epsilon verdict in the reports is PASS; a VIOLATION (a lower bound
    above the claim at 95% confidence, or an estimate more than 10% above it) FAILs,
    naming the finding, the estimator, epsilon_emp and epsilon_claim [whether the
    implementation keeps the promise: SP 800-226's implementation hazards].
``max_psnr`` (dB), ``max_ssim`` (number in [-1, 1]), ``min_lpips`` (number >= 0)
    reconstruction attacks: the worst case (the most-leaking image, the metric's
    ``worst``) over every finding carrying the metric ``psnr`` / ``ssim`` / ``lpips`` is at
    most / at most / at least this.
``max_tpr_at_1pct_fpr`` (number in [0, 1])
    membership attacks: the true-positive rate at 1% false-positive rate of every
    finding carrying one (``TPR @ 1.0% FPR``, or a name such as
    ``stage1_membership_tpr_at_1pct_fpr``) is at most this (random guessing: 0.01).
``required_threat_models``, ``required_attacks`` (non-empty lists of names)
    every listed threat model / attack appears in some finding of the reports (attack
    names as in the findings: ``inverting-gradients``, ``lira``, ``epsilon-cp``...) [the
    trust model: which adversaries the evidence covers].

Plus two optional free-text keys, ``name`` and ``description``. A rule set to ``false``
(the two booleans) is not evaluated. Numbers are strict (a quoted ``"20"`` is an error),
except that in YAML files a threshold written in exponent notation without a dot
(``5e-2``, which PyYAML reads as a string) is taken as the number it spells.

Unit matching: a claim's unit is free text (``"one client's local data (replace-one, L2
sensitivity 2C per release)"``, ``"one training example (sample-level DP-SGD accounting,
add-or-remove)"``). Its level is that of the *first* of these words in it (whole words,
case-insensitive; ``client's`` counts): ``client``, ``user``, ``device``, ``participant``
-> client level; ``example``, ``record``, ``sample``, ``data point`` -> example level. The
first word names whose data the unit is ("one example of a client" is example level).
Client level contains example level (changing one example changes one client's data), so
a client-level claim satisfies ``unit_of_privacy = "example"`` with the same epsilon, and
an example-level claim does not satisfy ``"client"`` (SP 800-226: user-level privacy
protects more than event-level). A claim whose unit is missing or has none of the words
FAILs: the unit must be stated (SP 800-226). The policy value accepts the same words
(``user``/``device``/``participant`` mean ``client``; ``record``/``sample`` mean
``example``).

Choices of this module:

* Each rule answers one question; ``unit_of_privacy`` is its own rule beside
  ``max_epsilon_claim`` (an epsilon means nothing without its unit, so set both).
* Claims: the primary claim of every finding and each of its ``alternatives`` (e.g.
  DEeR's "as run" claim) is checked; a finding without a DP claim is left to
  ``require_dp_claim`` (the epsilon and unit rules then say how many they skipped). A DP
  claim without an epsilon FAILs ``max_epsilon_claim``. Epsilons are compared as stated:
  a replace-one epsilon is not converted to add-or-remove (the neighbouring relation found
  in the unit text is shown in the evidence).
* Empirical epsilon: the verdicts of ``privacy_audit`` (``fedaudit audit --estimator``),
  including those against alternative claims, and of membership findings'
  ``membership.empirical_epsilon`` when a claim was there to compare. A verdict that is
  neither PASS nor VIOLATION makes the rule NOT EVALUATED unless another one FAILs.
* Metric rules use the metric's ``worst`` (falling back to the most-leaking non-null
  ``per_item``); only the whole-image metrics named exactly ``psnr``/``ssim``/``lpips``
  count (not the region metrics ``psnr (PSI)``...). A metric present but not computed (LPIPS
  null: no weights, ``--no-lpips``) gives NOT EVALUATED with the reason from the report,
  unless a computed value already FAILs: a worst case over findings is not known while
  one of them is missing.
* Thresholds are inclusive: ``worst <= max`` passes, ``worst >= min`` passes.
* Status of a rule: FAIL if any evidence fails; else NOT EVALUATED if no finding carries
  what the rule needs (or, for the metric and empirical-epsilon rules, one carries it
  uncomputed); else PASS. :func:`overall`: FAIL if any rule fails, PASS if every evaluated
  rule passes (NOT EVALUATED rules are listed, not counted), NOT EVALUATED if none was
  evaluated. A PASS is no proof of privacy: it says these audits found no stronger
  evidence of leakage than the policy allows.
* Evidence entries are flat JSON dicts, one per finding (and claim) compared, with
  ``report`` (the index in the sequence given to :func:`evaluate`), ``finding`` (its id),
  the values compared and ``result`` (``"pass"``, ``"fail"`` or ``"not evaluated"``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


from audit.config import read_table_file
from audit.errors import InvalidParameterError, invalid
from audit.validation import check_table_keys

PASS, FAIL, NOT_EVALUATED = "PASS", "FAIL", "NOT EVALUATED"
STATUSES = (PASS, FAIL, NOT_EVALUATED)
_SEVERITY = {PASS: 0, NOT_EVALUATED: 1, FAIL: 2}

#: the default policy, shipped as package data (``[tool.setuptools.package-data] audit``)
DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.toml"

#: unit_of_privacy values accepted in a policy -> the level they mean
UNIT_ALIASES = {
    "client": "client", "user": "client", "device": "client", "participant": "client",
    "example": "example", "record": "example", "sample": "example",
}
#: containment of the levels: a claim at a level protects every level listed for it
_COVERS = {"client": ("client", "example"), "example": ("example",)}
_UNIT_WORDS = re.compile(
    r"\b(?P<client>clients?|users?|devices?|participants?)\b"
    r"|\b(?P<example>examples?|records?|samples?|data[ -]points?|datapoints?)\b",
    re.IGNORECASE,
)
_TPR_1PCT = re.compile(r"tpr\s*(?:@|_at_|\s+at\s+)\s*([0-9]*\.?[0-9]+)\s*(?:%|pct)\s*_?\s*fpr")
# PyYAML (YAML 1.1) reads 5e-2 (no dot) as a string: accepted as a number in YAML files only
_YAML_SCI = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_NUMBER_KEYS = ("max_epsilon_claim", "max_psnr", "max_ssim", "min_lpips", "max_tpr_at_1pct_fpr")


# -- the policy -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A validated compliance policy; ``None`` / ``False`` / ``()`` means "rule not used".

    ``source`` says where it came from (a path, or ``default (...)``); it is not a policy
    key. Constructing one validates every value (errors name the key and the source).
    """

    name: str | None = None
    description: str | None = None
    require_dp_claim: bool = False
    max_epsilon_claim: float | None = None
    unit_of_privacy: str | None = None
    epsilon_emp_within_claim: bool = False
    max_psnr: float | None = None
    max_ssim: float | None = None
    min_lpips: float | None = None
    max_tpr_at_1pct_fpr: float | None = None
    required_threat_models: tuple[str, ...] = ()
    required_attacks: tuple[str, ...] = ()
    source: str = field(default="<in memory>", compare=False)

    def __post_init__(self) -> None:
        owner = f"policy {self.source}"
        for key in ("name", "description"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise invalid(key, owner, "a str", value)
        for key in ("require_dp_claim", "epsilon_emp_within_claim"):
            if not isinstance(getattr(self, key), bool):
                raise invalid(key, owner, "a bool (true or false)", getattr(self, key))
        ranges = {"max_epsilon_claim": (0.0, None), "max_psnr": (None, None),
                  "max_ssim": (-1.0, 1.0), "min_lpips": (0.0, None),
                  "max_tpr_at_1pct_fpr": (0.0, 1.0)}
        for key, (low, high) in ranges.items():
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, _number(key, owner, value, low, high))
        if self.unit_of_privacy is not None:
            unit = self.unit_of_privacy
            if not isinstance(unit, str) or unit.strip().lower() not in UNIT_ALIASES:
                raise invalid("unit_of_privacy", owner,
                              "a str among {" + ", ".join(repr(u) for u in UNIT_ALIASES) + "}", unit)
            object.__setattr__(self, "unit_of_privacy", UNIT_ALIASES[unit.strip().lower()])
        for key in ("required_threat_models", "required_attacks"):
            object.__setattr__(self, key, _names(key, owner, getattr(self, key)))
        if not self.rules:
            raise InvalidParameterError(
                f"The {owner} sets no rule: give at least one of "
                + ", ".join(RULE_KEYS) + ".")

    @property
    def rules(self) -> tuple[str, ...]:
        """The rules this policy uses, in evaluation order."""
        return tuple(k for k in RULE_KEYS if getattr(self, k) not in (None, False, ()))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<in memory>") -> "Policy":
        """A policy from the keys of a policy file; an unknown key is an error naming it."""
        check_table_keys(data, POLICY_KEYS, f"policy {source}")
        return cls(**data, source=source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the rules used (with ``name``/``description`` when set) and
        the ``source``."""
        out: dict[str, Any] = {k: getattr(self, k) for k in ("name", "description")
                               if getattr(self, k) is not None}
        for key in self.rules:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, tuple) else value
        out["source"] = self.source
        return out


POLICY_KEYS = tuple(f.name for f in fields(Policy) if f.name != "source")
RULE_KEYS = tuple(k for k in POLICY_KEYS if k not in ("name", "description"))


def _number(key: str, owner: str, value: Any, low: float | None, high: float | None) -> float:
    desc = "a finite number"
    if low is not None and high is not None:
        desc = f"a number in the range [{low:g}, {high:g}]"
    elif low is not None:
        desc = f"a number >= {low:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(key, owner, desc, value)
    v = float(value)
    if not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
        raise invalid(key, owner, desc, value)
    return v


def _names(key: str, owner: str, value: Any) -> tuple[str, ...]:
    if value == ():
        return ()
    desc = "a non-empty list of distinct non-empty str names"
    if not isinstance(value, (list, tuple)) or not value:
        raise invalid(key, owner, desc, value)
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise invalid(key, owner, desc, value)
    if len(set(value)) != len(value):
        raise invalid(key, owner, desc, value)
    return tuple(value)


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (TOML or YAML), or the default policy.

    Args:
        path: A ``.toml``, ``.yaml`` or ``.yml`` file; None for the default policy
            shipped at ``audit/policies/default.toml``.

    Returns:
        The :class:`Policy`, its ``source`` the path (or ``default (<path>)``).

    Raises:
        InvalidParameterError: A missing file, another suffix, a file that does not parse,
            a file that is not a table, an unknown key, a value of the wrong type or out
            of range, or a policy that sets no rule; the one-line message names the file
            and the key.
    """
    if path is None:
        p, source = DEFAULT_POLICY_PATH, f"default ({DEFAULT_POLICY_PATH})"
    else:
        if not isinstance(path, (str, Path)):
            raise invalid("path", "load_policy", "a str, a path or None", path)
        p = Path(path)
        source = f"file {str(p)!r}"
    data = read_table_file(p, "Policy file")
    suffix = p.suffix.lower()
    if suffix != ".toml" and isinstance(data, dict):
        data = {k: float(v) if k in _NUMBER_KEYS and isinstance(v, str) and _YAML_SCI.fullmatch(v.strip())
                else v for k, v in data.items()}
    return Policy.from_dict(data, source=source)


# -- results ----------------------------------------------------------------------------------------


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


def _status(evidence: list[dict], *, none_why: str, fail_why: str, pass_why: str,
            unevaluated_why: str = "") -> tuple[str, str]:
    results = [e["result"] for e in evidence]
    if "fail" in results:
        return FAIL, fail_why
    if not evidence:
        return NOT_EVALUATED, none_why
    if "not evaluated" in results:
        return NOT_EVALUATED, unevaluated_why
    return PASS, pass_why


def _g(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


# -- walking the reports ----------------------------------------------------------------------------


def _findings(reports: Sequence[dict]):
    for i, report in enumerate(reports):
        for f in report["findings"]:
            yield i, f


def _claims(reports: Sequence[dict]):
    """(report index, finding, claim dict, label) for each DP claim: primary, then alternatives."""
    for i, f in _findings(reports):
        claim = f["claim"]
        if not claim.get("has_dp"):
            continue
        yield i, f, claim, claim.get("label") or "primary"
        for alt in claim.get("alternatives") or ():
            if alt.get("has_dp"):
                yield i, f, alt, alt.get("label") or "alternative"


def _no_claim_count(reports: Sequence[dict]) -> int:
    return sum(1 for _, f in _findings(reports) if not f["claim"].get("has_dp"))


def unit_level(unit: str | None) -> str | None:
    """``"client"``, ``"example"`` or None: the level named by the first unit word in
    ``unit`` (see the module docstring, "Unit matching")."""
    if not unit:
        return None
    m = _UNIT_WORDS.search(unit)
    if m is None:
        return None
    return "client" if m.group("client") else "example"


def _neighbouring(claim: dict) -> str | None:
    text = f"{claim.get('unit') or ''} {claim.get('mechanism') or ''}".lower()
    if "replace-one" in text or "replace one" in text:
        return "replace-one"
    if "add-or-remove" in text or "add/remove" in text or "add or remove" in text:
        return "add-or-remove"
    return None


# -- the rules --------------------------------------------------------------------------------------


def _require_dp_claim(policy: Policy, reports: Sequence[dict]) -> RuleResult:
    ev = [{"report": i, "finding": f["id"], "defense": f["defense"]["name"],
           "has_dp": bool(f["claim"].get("has_dp")), "statement": f["claim"].get("statement"),
           "result": "pass" if f["claim"].get("has_dp") else "fail"} for i, f in _findings(reports)]
    bad = sorted({e["defense"] for e in ev if e["result"] == "fail"})
    status, why = _status(
        ev, none_why="The reports hold no finding.",
        fail_why=(f"{len(bad)} defense(s) make no differential-privacy claim: {', '.join(bad)} (findings "
                  + ", ".join(e["finding"] for e in ev if e["result"] == "fail") + ")."),
        pass_why=f"Every audited defense ({len(ev)} finding(s)) makes a differential-privacy claim.")
    return RuleResult("require_dp_claim", "Every audited defense makes a DP claim", status, ev, why)


def _skipped(reports: Sequence[dict]) -> str:
    n = _no_claim_count(reports)
    return f" {n} finding(s) without a DP claim are left to require_dp_claim." if n else ""


def _max_epsilon_claim(policy: Policy, reports: Sequence[dict]) -> RuleResult:
    limit = policy.max_epsilon_claim
    ev = []
    for i, f, claim, label in _claims(reports):
        eps = claim.get("epsilon")
        ev.append({"report": i, "finding": f["id"], "defense": f["defense"]["name"], "claim": label,
                   "epsilon_claim": eps, "delta": claim.get("delta"), "unit": claim.get("unit"),
                   "neighbouring": _neighbouring(claim), "trust_model": claim.get("trust_model"),
                   "max_epsilon_claim": limit,
                   "result": "pass" if eps is not None and eps <= limit else "fail"})
    fails = [e for e in ev if e["result"] == "fail"]
    status, why = _status(
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
    for i, f, claim, label in _claims(reports):
        level = unit_level(claim.get("unit"))
        ev.append({"report": i, "finding": f["id"], "defense": f["defense"]["name"], "claim": label,
                   "unit": claim.get("unit"), "unit_level": level, "required": need,
                   "result": "pass" if level is not None and need in _COVERS[level] else "fail"})
    fails = [e for e in ev if e["result"] == "fail"]
    status, why = _status(
        ev, none_why="No finding carries a differential-privacy claim, so no unit of privacy."
        + _skipped(reports),
        fail_why=f"{len(fails)} claim(s) do not protect one {need}: "
        + "; ".join(f"{e['finding']} ({e['claim']}): unit {e['unit']!r} is "
                    + (f"{e['unit_level']}-level" if e["unit_level"] else "not stated or not recognised")
                    for e in fails) + "." + _skipped(reports),
        pass_why=f"Every claim ({len(ev)}) protects at least one {need}." + _skipped(reports))
    return RuleResult("unit_of_privacy", f"Unit of privacy: one {need} (or coarser)", status, ev, why)


def _empirical_entries(reports: Sequence[dict]) -> list[dict]:
    ev = []
    for i, f in _findings(reports):
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


def _epsilon_emp_within_claim(policy: Policy, reports: Sequence[dict]) -> RuleResult:
    ev = _empirical_entries(reports)
    fails = [e for e in ev if e["result"] == "fail"]
    odd = [e for e in ev if e["result"] == "not evaluated"]
    status, why = _status(
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


def _worst(metric: dict) -> float | None:
    if metric.get("worst") is not None:
        return float(metric["worst"])
    values = [v for v in metric.get("per_item") or () if v is not None]
    if not values:
        return None
    return max(values) if metric["direction"] == "higher-leaks-more" else min(values)


def _not_computed_reason(report: dict, metric: dict) -> str:
    word = metric["name"].split()[0].lower()
    notes = [n for n in report.get("notes") or () if word in n.lower()]
    parts = [metric.get("note")] + [n for n in notes if n != metric.get("note")]
    return "; ".join(p for p in parts if p) or "no value in the report"


def _metric_rule(reports: Sequence[dict], *, rule: str, title: str, label: str, limit: float,
                 upper: bool, match) -> RuleResult:
    ev = []
    for i, f in _findings(reports):
        for m in f["metrics"]:
            if not match(m["name"]):
                continue
            worst = _worst(m)
            base = m.get("baseline") or {}
            entry = {"report": i, "finding": f["id"], "attack": f["attack"]["name"],
                     "metric": m["name"], "worst": worst, "mean": m.get("mean"),
                     "baseline_worst": base.get("worst"), ("max" if upper else "min"): limit}
            if worst is None:
                entry.update(result="not evaluated", note=_not_computed_reason(reports[i], m))
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
    status, why = _status(
        ev, none_why=f"No finding carries the metric {label}.",
        fail_why=f"{label} {bad} {_g(limit)} in " + "; ".join(
            f"{e['finding']} ({e['metric']}: worst {_g(e['worst'])})" for e in fails) + ".",
        pass_why=f"The worst {label} over {len(ev)} finding(s) is {_g(extreme)}, {cmp_} {_g(limit)}.",
        unevaluated_why=f"{label} was not computed in " + "; ".join(
            f"{e['finding']} ({e['note']})" for e in odd) + (
            f"; the computed worst case ({_g(extreme)}) is {cmp_} {_g(limit)} but the worst case over "
            "all findings is unknown." if computed else "."))
    return RuleResult(rule, title, status, ev, why)


def _named(name: str):
    return lambda metric_name: metric_name.strip().lower() == name


def _is_tpr_at_1pct(name: str) -> bool:
    m = _TPR_1PCT.search(name.lower())
    return m is not None and math.isclose(float(m.group(1)), 1.0)


def _required(reports: Sequence[dict], *, rule: str, title: str, what: str, names: tuple[str, ...],
              get) -> RuleResult:
    found: dict[str, list[tuple[int, str]]] = {}
    for i, f in _findings(reports):
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
    status, why = _status(
        ev, none_why="",
        fail_why=f"No finding covers the required {what.replace('_', ' ')}(s) "
        + ", ".join(missing) + f" (the reports cover: {present}).",
        pass_why=f"Every required {what.replace('_', ' ')} is covered by some finding.")
    return RuleResult(rule, title, status, ev, why)


def evaluate(policy: Policy, reports: Sequence[dict]) -> list[RuleResult]:
    """Judge ``reports`` (decoded ``report.json`` dicts, each validated first) against
    ``policy``: one :class:`RuleResult` per rule the policy uses, in :data:`RULE_KEYS`
    order.

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
                                    match=_named("psnr")))
        elif key == "max_ssim":
            out.append(_metric_rule(reports, rule=key, label="SSIM", limit=policy.max_ssim, upper=True,
                                    title=f"Worst-case reconstruction SSIM at most {_g(policy.max_ssim)}",
                                    match=_named("ssim")))
        elif key == "min_lpips":
            out.append(_metric_rule(reports, rule=key, label="LPIPS", limit=policy.min_lpips, upper=False,
                                    title=f"Worst-case reconstruction LPIPS at least {_g(policy.min_lpips)}",
                                    match=_named("lpips")))
        elif key == "max_tpr_at_1pct_fpr":
            out.append(_metric_rule(reports, rule=key, label="TPR at 1% FPR", upper=True,
                                    limit=policy.max_tpr_at_1pct_fpr,
                                    title=f"Membership TPR at 1% FPR at most {_g(policy.max_tpr_at_1pct_fpr)}",
                                    match=_is_tpr_at_1pct))
        elif key == "required_threat_models":
            out.append(_required(reports, rule=key, what="threat_model", names=policy.required_threat_models,
                                 title="Required threat models covered: " + ", ".join(policy.required_threat_models),
                                 get=lambda f: f["threat_model"]["name"]))
        elif key == "required_attacks":
            out.append(_required(reports, rule=key, what="attack", names=policy.required_attacks,
                                 title="Required attacks run: " + ", ".join(policy.required_attacks),
                                 get=lambda f: f["attack"]["name"]))
    return out
