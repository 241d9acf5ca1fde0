"""Structure of ``report.json`` (schema version 1.0) and its validation.

:func:`validate_report` checks required keys, types and enumerations, and raises
:class:`~audit.core.errors.InvalidParameterError` with a one-line message that names the
offending key path, e.g. ``findings[0].claim.epsilon``. Unknown extra keys are allowed
(so that a report can carry more than the renderers show). The optional
``findings[i].claim.parts`` (per-layer budgets of a composed claim, or per-round rows
``{name, noise_multiplier, sensitivity_factor}``), ``claim.label``, ``claim.alternatives``
(other claims for the same run, each checked as a claim) and
``findings[i].privacy_audit.alternatives`` (the empirical epsilon's verdict against each
alternative claim) and ``findings[i].exposure`` (who is exposed to a membership attack,
:mod:`reports.exposure_schema`) are checked when present and not null, as are the keys of
the claimed-vs-empirical ledger (:mod:`reports.ledger_schema`): ``claim.unit_level`` /
``adjacency`` / ``assumptions``, ``privacy_audit.lint``, the evidence keys of
``privacy_audit.alternatives`` entries and the top-level ``ledger``.
:func:`strip_volatile` drops the keys that differ between otherwise identical runs.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from audit.core.errors import InvalidParameterError
from reports.schema_checks import (
    _bool, _dict, _fail, _float, _image, _int, _is_number, _join, _key, _opt_int, _opt_str, _options, _str, _str_list,
)

SCHEMA_VERSION = "1.0"
VOLATILE_KEYS = ("created_utc", "runtime_s")

_KIND = "fedaudit-audit"
_DIRECTIONS = ("higher-leaks-more", "lower-leaks-more")
_TRUST_MODELS = ("local", "central")
_ALT_VERDICTS = ("PASS", "VIOLATION", "INCONCLUSIVE")
def _scalar_params(v: Any, path: str) -> None:
    for name, value in _dict(v, path).items():
        sub = _join(path, str(name))
        if not isinstance(name, str):
            raise _fail(path, "an object with str keys", name)
        if _is_number(value):
            _float(value, sub)
        elif value is not None and not isinstance(value, (str, bool)):
            raise _fail(sub, "a JSON scalar (str, number, bool or null)", value)


def _json_value(v: Any, path: str) -> None:
    if isinstance(v, dict):
        for name, value in v.items():
            if not isinstance(name, str):
                raise _fail(path, "an object with str keys", name)
            _json_value(value, _join(path, name))
    elif isinstance(v, list):
        for i, item in enumerate(v):
            _json_value(item, f"{path}[{i}]")
    elif _is_number(v):
        _float(v, path)
    elif v is not None and not isinstance(v, (str, bool)):
        raise _fail(path, "a JSON value", v)


def _check_version(v: Any) -> None:
    if not isinstance(v, str):
        raise _fail("schema_version", f"the str {SCHEMA_VERSION!r}", v)
    if v == SCHEMA_VERSION:
        return
    hint = ""
    try:
        found = tuple(int(p) for p in v.split("."))
        supported = tuple(int(p) for p in SCHEMA_VERSION.split("."))
        if found < supported:
            hint = " (an older schema; re-run the audit to regenerate the report)"
        else:
            hint = " (a newer schema; upgrade fedaudit to read it)"
    except ValueError:
        pass
    raise InvalidParameterError(
        f"Invalid report: 'schema_version' is {v!r}{hint}, but this fedaudit supports "
        f"only schema version {SCHEMA_VERSION!r}."
    )


def _check_environment(env: Any, path: str) -> None:
    _dict(env, path)
    for key in ("fedaudit", "python", "platform", "device"):
        _str(_key(env, path, key), _join(path, key))
    packages = _dict(_key(env, path, "packages"), _join(path, "packages"))
    for name, version in packages.items():
        _str(version, _join(_join(path, "packages"), str(name)))
    _int(_key(env, path, "threads"), _join(path, "threads"), low=0)


def _check_claim(claim: Any, path: str) -> None:
    _dict(claim, path)
    get = lambda k: _key(claim, path, k)  # noqa: E731
    _bool(get("has_dp"), _join(path, "has_dp"))
    _float(get("epsilon"), _join(path, "epsilon"), nullable=True, low=0)
    _float(get("delta"), _join(path, "delta"), nullable=True, low=0, high=1)
    _opt_str(get("unit"), _join(path, "unit"))
    _options(get("trust_model"), _join(path, "trust_model"), _TRUST_MODELS, nullable=True)
    _opt_int(get("compositions"), _join(path, "compositions"))
    _opt_str(get("accountant"), _join(path, "accountant"))
    _opt_str(get("mechanism"), _join(path, "mechanism"))
    _str(get("statement"), _join(path, "statement"))
    if claim.get("parts") is not None:  # optional: absent in older reports
        _check_claim_parts(claim["parts"], _join(path, "parts"))
    _opt_str(claim.get("label"), _join(path, "label"))  # optional, as the next two
    if claim.get("alternatives") is not None:
        apath = _join(path, "alternatives")
        alternatives = claim["alternatives"]
        if not isinstance(alternatives, (list, tuple)):
            raise _fail(apath, "a list of claim objects", alternatives)
        for i, alternative in enumerate(alternatives):
            _check_claim(alternative, f"{apath}[{i}]")
    from reports.ledger_schema import check_claim_extras  # it builds on schema_checks

    check_claim_extras(claim, path)  # optional: unit_level, adjacency, assumptions


def _check_claim_parts(parts: Any, path: str) -> None:
    # a tuple too: PrivacyClaim.to_dict() gives one before the JSON round trip
    if not isinstance(parts, (list, tuple)):
        raise _fail(path, "a list of part objects", parts)
    for i, part in enumerate(parts):
        ppath = f"{path}[{i}]"
        _dict(part, ppath)
        _str(_key(part, ppath, "name"), _join(ppath, "name"))
        if "sensitivity_factor" in part:  # a per-round row (an alternative claim's)
            _float(part["sensitivity_factor"], _join(ppath, "sensitivity_factor"), low=0)
            _float(_key(part, ppath, "noise_multiplier"), _join(ppath, "noise_multiplier"),
                   low=0)
            continue
        _float(_key(part, ppath, "epsilon"), _join(ppath, "epsilon"), low=0)
        _float(_key(part, ppath, "noise_multiplier"), _join(ppath, "noise_multiplier"), low=0)
        _float(_key(part, ppath, "clip_norm"), _join(ppath, "clip_norm"), low=0)
        _float(_key(part, ppath, "share"), _join(ppath, "share"), low=0, high=1)


def _check_metric(metric: Any, path: str) -> None:
    _dict(metric, path)
    get = lambda k: _key(metric, path, k)  # noqa: E731
    _str(get("name"), _join(path, "name"))
    _str(get("unit"), _join(path, "unit"))
    _options(get("direction"), _join(path, "direction"), _DIRECTIONS)
    _float(get("mean"), _join(path, "mean"), nullable=True)
    _float(get("worst"), _join(path, "worst"), nullable=True)
    per_item = get("per_item")
    if not isinstance(per_item, list):
        raise _fail(_join(path, "per_item"), "a list of numbers or nulls", per_item)
    for i, item in enumerate(per_item):
        _float(item, f"{path}.per_item[{i}]", nullable=True)
    baseline = get("baseline")
    if baseline is not None:
        bpath = _join(path, "baseline")
        _dict(baseline, bpath)
        _str(_key(baseline, bpath, "description"), _join(bpath, "description"))
        _float(_key(baseline, bpath, "mean"), _join(bpath, "mean"), nullable=True)
        _float(_key(baseline, bpath, "worst"), _join(bpath, "worst"), nullable=True)
    _opt_str(get("note"), _join(path, "note"))


def _check_finding(f: Any, path: str) -> None:
    _dict(f, path)
    get = lambda k: _key(f, path, k)  # noqa: E731
    _str(get("id"), _join(path, "id"))
    _str(get("title"), _join(path, "title"))
    defense, dpath = _dict(get("defense"), _join(path, "defense")), _join(path, "defense")
    _str(_key(defense, dpath, "name"), _join(dpath, "name"))
    _scalar_params(_key(defense, dpath, "params"), _join(dpath, "params"))
    _check_claim(get("claim"), _join(path, "claim"))
    tm, tpath = _dict(get("threat_model"), _join(path, "threat_model")), _join(path, "threat_model")
    for key in ("name", "adversary", "observes", "description"):
        _str(_key(tm, tpath, key), _join(tpath, key))
    _str_list(_key(tm, tpath, "knows"), _join(tpath, "knows"))
    attack, apath = _dict(get("attack"), _join(path, "attack")), _join(path, "attack")
    for key in ("name", "family"):
        _str(_key(attack, apath, key), _join(apath, key))
    _scalar_params(_key(attack, apath, "params"), _join(apath, "params"))
    setting, spath = _dict(get("setting"), _join(path, "setting")), _join(path, "setting")
    for key in ("dataset", "model"):
        _str(_key(setting, spath, key), _join(spath, key))
    _json_value(_dict(_key(setting, spath, "model_params"), _join(spath, "model_params")),
                _join(spath, "model_params"))
    for key in ("batch_size", "num_targets", "local_steps", "rounds", "clients"):
        _int(_key(setting, spath, key), _join(spath, key), low=0)
    if "simulation" in setting:  # optional: how the federation was simulated
        sim, mpath = _dict(setting["simulation"], _join(spath, "simulation")), _join(spath, "simulation")
        _options(_key(sim, mpath, "path"), _join(mpath, "path"), ("vectorised", "loop"))
        _str(_key(sim, mpath, "reason"), _join(mpath, "reason"))
        _options(_key(sim, mpath, "sampling"), _join(mpath, "sampling"), ("fixed", "poisson"))
        if "observations_kept" in sim:
            _bool(sim["observations_kept"], _join(mpath, "observations_kept"))
    if "utility" in f:  # optional: the final model on held-out items
        upath = _join(path, "utility")
        for name, value in _dict(f["utility"], upath).items():
            _float(value, _join(upath, str(name)))
    metrics = get("metrics")
    if not isinstance(metrics, list):
        raise _fail(_join(path, "metrics"), "a list of metric objects", metrics)
    for i, metric in enumerate(metrics):
        _check_metric(metric, f"{path}.metrics[{i}]")
    _image(get("images"), _join(path, "images"))
    samples = f.get("text_samples")
    if samples is not None:  # optional: text attacks
        tpath = _join(path, "text_samples")
        if not isinstance(samples, list):
            raise _fail(tpath, "a list of {truth, recovered} objects", samples)
        for i, sample in enumerate(samples):
            _dict(sample, f"{tpath}[{i}]")
            for key in ("truth", "recovered"):
                _str(_key(sample, f"{tpath}[{i}]", key), f"{tpath}[{i}].{key}")
    if f.get("privacy_audit") is not None:  # optional: findings of the epsilon audit
        _check_privacy_audit(f["privacy_audit"], _join(path, "privacy_audit"))
    if f.get("exposure") is not None:  # optional: membership findings (who is exposed)
        from reports.exposure_schema import check_exposure  # it builds on this module's checks

        check_exposure(f["exposure"], _join(path, "exposure"))
    _float(get("runtime_s"), _join(path, "runtime_s"), low=0)


def _check_privacy_audit(audit: Any, path: str) -> None:
    _dict(audit, path)
    _opt_str(audit.get("verdict"), _join(path, "verdict"))
    _opt_str(audit.get("reason"), _join(path, "reason"))
    # optional: the largest epsilon the audit could have certified (None: an estimate)
    _float(audit.get("power_ceiling"), _join(path, "power_ceiling"), nullable=True, low=0)
    from reports.ledger_schema import check_alternative_extras, check_lint  # builds on schema_checks

    if audit.get("lint") is not None:  # optional: the accounting lint's findings
        check_lint(audit["lint"], _join(path, "lint"))
    alternatives = audit.get("alternatives")
    if alternatives is None:  # optional: absent in older reports
        return
    apath = _join(path, "alternatives")
    if not isinstance(alternatives, (list, tuple)):
        raise _fail(apath, "a list of objects (one per alternative claim)", alternatives)
    for i, alt in enumerate(alternatives):
        ipath = f"{apath}[{i}]"
        _dict(alt, ipath)
        get = lambda k: _key(alt, ipath, k)  # noqa: E731, B023
        _str(get("label"), _join(ipath, "label"))
        _float(get("epsilon_claim"), _join(ipath, "epsilon_claim"), low=0)
        _float(get("delta"), _join(ipath, "delta"), nullable=True, low=0, high=1)
        _opt_str(get("unit"), _join(ipath, "unit"))
        _options(get("trust_model"), _join(ipath, "trust_model"), _TRUST_MODELS)
        _options(get("verdict"), _join(ipath, "verdict"), _ALT_VERDICTS)
        _str(get("reason"), _join(ipath, "reason"))
        check_alternative_extras(alt, ipath)  # optional: the evidence it was judged on


def validate_report(report: dict) -> dict:
    """Check the structure of an audit report (schema version :data:`SCHEMA_VERSION`).

    Args:
        report: The decoded ``report.json`` object.

    Returns:
        The same ``report`` object, unchanged.

    Raises:
        InvalidParameterError: On the first problem found: a wrong ``schema_version``
            (naming the version found and the one supported), a missing key, a value of
            the wrong type, an unknown enumeration value or a duplicate finding id. The
            one-line message names the key path, e.g. ``findings[0].claim.epsilon``.
    """
    if not isinstance(report, dict):
        raise _fail("report", "a JSON object (dict)", type(report).__name__)
    _check_version(_key(report, "", "schema_version"))
    kind = _key(report, "", "kind")
    if kind != _KIND:
        raise _fail("kind", repr(_KIND), kind)
    _str(_key(report, "", "title"), "title")
    created = _str(_key(report, "", "created_utc"), "created_utc")
    try:
        datetime.fromisoformat(created)
    except ValueError:
        raise _fail("created_utc", "an ISO-8601 date and time", created) from None
    _float(_key(report, "", "runtime_s"), "runtime_s", low=0)
    _str(_key(report, "", "command"), "command")
    _int(_key(report, "", "seed"), "seed")
    _check_environment(_key(report, "", "environment"), "environment")
    _str_list(_key(report, "", "notes"), "notes")
    findings = _key(report, "", "findings")
    if not isinstance(findings, list):
        raise _fail("findings", "a list of finding objects", findings)
    seen: set[str] = set()
    for i, finding in enumerate(findings):
        _check_finding(finding, f"findings[{i}]")
        if finding["id"] in seen:
            raise _fail(f"findings[{i}].id", "unique among the findings", finding["id"])
        seen.add(finding["id"])
    if report.get("ledger") is not None:  # optional: absent in older reports
        from reports.ledger_schema import check_ledger  # it builds on schema_checks

        check_ledger(report["ledger"])
    return report


def strip_volatile(report: Any) -> Any:
    """Deep copy of ``report`` without the :data:`VOLATILE_KEYS`, at any nesting level.

    Two runs of the same audit with the same seed give equal stripped reports.

    Args:
        report: A report dict (or any JSON-like value).

    Returns:
        A new object; ``report`` is not modified.
    """
    if isinstance(report, dict):
        return {k: strip_volatile(v) for k, v in report.items() if k not in VOLATILE_KEYS}
    if isinstance(report, list):
        return [strip_volatile(v) for v in report]
    return copy.deepcopy(report)
