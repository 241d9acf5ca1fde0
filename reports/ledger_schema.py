"""The hand checks of the claimed-vs-empirical ledger and of the report keys it is built from,
called by :func:`reports.schema.validate_report` and translated in the published JSON Schema
(``$defs/ledger_row``, ``$defs/lint_finding`` and the optional keys of ``$defs/claim`` and
``$defs/alternative_verdict`` of ``reports/schemas/audit-report-1.0.schema.json``).

* the optional keys of a claim: ``unit_level`` (``record`` / ``client``), ``adjacency``
  (``add-remove`` / ``replace-one``), ``assumptions`` (a list of str), each null allowed;
* ``privacy_audit.lint``: the accounting lint's findings ``{id, severity, message, fix}``;
* the optional evidence keys of a ``privacy_audit.alternatives`` entry: ``estimator``,
  ``epsilon_emp``, ``power_ceiling``, ``trials``;
* the top-level ``ledger``: the rows of :func:`reports.ledger.ledger_rows`.

Project choices: every key a ledger row has is required (``ledger_rows`` always writes it,
null where unknown), so a reader can rely on the row's shape; an interval is ``[low, high]``
with ``high`` null for a one-sided lower bound; extra keys are allowed, as everywhere in the
report; the in-memory tuple leniency of ``claim.parts`` / ``alternatives`` does not extend to
these keys (``PrivacyClaim.to_dict`` writes lists).
"""

from __future__ import annotations

from typing import Any

from audit.core.claims import ADJACENCIES, UNIT_LEVELS, TrustModel
from reports.ledger import LINT_SEVERITIES
from reports.schema_checks import _dict, _fail, _float, _int, _join, _key, _opt_int, _opt_str, _options, _str

NATURES = ("lower-bound", "estimate")
VERDICTS = ("PASS", "VIOLATION", "INCONCLUSIVE")
TRUST_MODELS = tuple(t.value for t in TrustModel)


def _list(v: Any, path: str, what: str) -> list:
    if not isinstance(v, list):
        raise _fail(path, f"a list of {what}", v)
    return v


def _opt_str_list(v: Any, path: str) -> None:
    if v is None:
        return
    for i, item in enumerate(_list(v, path, "str (or null)")):
        _str(item, f"{path}[{i}]")


def check_claim_extras(claim: dict, path: str) -> None:
    """The optional ``unit_level``, ``adjacency`` and ``assumptions`` of the claim at ``path``."""
    _options(claim.get("unit_level"), _join(path, "unit_level"), UNIT_LEVELS, nullable=True)
    _options(claim.get("adjacency"), _join(path, "adjacency"), ADJACENCIES, nullable=True)
    _opt_str_list(claim.get("assumptions"), _join(path, "assumptions"))


def check_lint(lint: Any, path: str) -> None:
    """A list of accounting-lint findings ``{id, severity, message, fix}`` at ``path``."""
    for i, item in enumerate(_list(lint, path, "lint findings {id, severity, message, fix}")):
        ipath = f"{path}[{i}]"
        _dict(item, ipath)
        _str(_key(item, ipath, "id"), _join(ipath, "id"))
        _options(_key(item, ipath, "severity"), _join(ipath, "severity"), LINT_SEVERITIES)
        for key in ("message", "fix"):
            _str(_key(item, ipath, key), _join(ipath, key))


def check_alternative_extras(alt: dict, path: str) -> None:
    """The optional evidence keys of a ``privacy_audit.alternatives`` entry at ``path``."""
    _opt_str(alt.get("estimator"), _join(path, "estimator"))
    if "epsilon_emp" in alt:
        _float(alt["epsilon_emp"], _join(path, "epsilon_emp"), low=0)
    _float(alt.get("power_ceiling"), _join(path, "power_ceiling"), nullable=True, low=0)
    if "trials" in alt:
        _int(alt["trials"], _join(path, "trials"), low=0)


def _check_row_claim(claim: Any, path: str) -> None:
    _dict(claim, path)
    get = lambda k: _key(claim, path, k)  # noqa: E731
    for key in ("label", "unit", "accountant"):
        _opt_str(get(key), _join(path, key))
    _float(get("epsilon"), _join(path, "epsilon"), nullable=True, low=0)
    _float(get("delta"), _join(path, "delta"), nullable=True, low=0, high=1)
    _options(get("unit_level"), _join(path, "unit_level"), UNIT_LEVELS, nullable=True)
    _options(get("adjacency"), _join(path, "adjacency"), ADJACENCIES, nullable=True)
    _options(get("trust_model"), _join(path, "trust_model"), TRUST_MODELS, nullable=True)
    apath = _join(path, "assumptions")
    for i, item in enumerate(_list(get("assumptions"), apath, "str")):
        _str(item, f"{apath}[{i}]")


def _check_evidence(ev: Any, path: str) -> None:
    _dict(ev, path)
    get = lambda k: _key(ev, path, k)  # noqa: E731
    _opt_str(get("estimator"), _join(path, "estimator"))
    _options(get("nature"), _join(path, "nature"), NATURES, nullable=True)
    _float(get("epsilon_emp"), _join(path, "epsilon_emp"), nullable=True, low=0)
    interval, ipath = get("interval"), _join(path, "interval")
    if interval is not None:
        if not isinstance(interval, list) or len(interval) != 2:
            raise _fail(ipath, "a list [low, high] (high null: one-sided) or null", interval)
        _float(interval[0], f"{ipath}[0]", low=0)
        _float(interval[1], f"{ipath}[1]", nullable=True, low=0)
    _float(get("confidence"), _join(path, "confidence"), nullable=True, low=0, high=1)
    _float(get("power_ceiling"), _join(path, "power_ceiling"), nullable=True, low=0)
    _opt_int(get("trials"), _join(path, "trials"))


def check_ledger_row(row: Any, path: str) -> None:
    """One ledger row (:func:`reports.ledger.ledger_rows`) at ``path``."""
    _dict(row, path)
    get = lambda k: _key(row, path, k)  # noqa: E731
    _opt_str(get("run"), _join(path, "run"))
    for key in ("finding", "defense"):
        _str(get(key), _join(path, key))
    _check_row_claim(get("claim"), _join(path, "claim"))
    _check_evidence(get("evidence"), _join(path, "evidence"))
    _options(get("verdict"), _join(path, "verdict"), VERDICTS)
    _opt_str(get("reason"), _join(path, "reason"))
    check_lint(get("lint"), _join(path, "lint"))
    summary, spath = _dict(get("lint_summary"), _join(path, "lint_summary")), _join(path, "lint_summary")
    for sev in LINT_SEVERITIES:
        _int(_key(summary, spath, sev), _join(spath, sev), low=0)


def check_ledger(ledger: Any, path: str = "ledger") -> None:
    """The report's ``ledger`` (a list of rows) at ``path``; raises naming the first bad key path."""
    for i, row in enumerate(_list(ledger, path, "ledger rows")):
        check_ledger_row(row, f"{path}[{i}]")
