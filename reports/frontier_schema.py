"""The hand check of ``OUT/frontier.json`` (:func:`reports.frontier.build_frontier`), in the
style of :mod:`reports.ledger_schema`: every error names the JSON path, the constraint and
the value (:mod:`reports.schema_checks`).

Checked: ``kind`` and ``schema_version``; ``confidence`` in (0, 1); each curve's ``id``,
``label``, ``defense``, ``params``, ``match``, ``metrics`` (name and kind ``utility`` /
``attack``), ``utility_metric`` (one of its utility metrics, or null), its points (epsilon a
number > 0, or null for infinity, only as the last point) and ``baseline``; each point's
``n_seeds``, ``single_seed`` (exactly when fewer than two runs), ``seeds`` and per-metric
``{mean, interval, n, values}`` (``n`` the number of values, ``mean`` their mean, an
interval ``[low, high]`` around the mean present exactly when ``n >= 2``); each verdict's
``status`` among ``holds`` / ``fails`` / ``not judgeable``, its ``verdict`` text agreeing
with it, and its ``curve`` naming a curve.

Project choices: extra keys are allowed, as everywhere in the reports; a mean is checked
against its values to a relative 1e-9 (what the JSON round trip keeps).
"""

from __future__ import annotations

import math
from typing import Any

from reports.frontier import KIND, SCHEMA_VERSION
from reports.frontier_claims import STATUSES
from reports.schema_checks import (_bool, _dict, _fail, _float, _int, _join, _key, _opt_str, _options,
                                   _str, _str_list)

METRIC_KINDS = ("utility", "attack")
SIDES = ("support", "contradict", "overlap")


def _list(v: Any, path: str, what: str) -> list:
    if not isinstance(v, list):
        raise _fail(path, f"a list of {what}", v)
    return v


def _stat(stat: Any, path: str) -> None:
    _dict(stat, path)
    values = _list(_key(stat, path, "values"), _join(path, "values"), "numbers")
    for i, v in enumerate(values):
        _float(v, f"{_join(path, 'values')}[{i}]")
    _int(_key(stat, path, "n"), _join(path, "n"), low=0)
    if stat["n"] != len(values):
        raise _fail(_join(path, "n"), f"the number of values ({len(values)})", stat["n"])
    mean, mpath = _key(stat, path, "mean"), _join(path, "mean")
    if not values:
        if mean is not None:
            raise _fail(mpath, "null (no values)", mean)
    else:
        _float(mean, mpath)
        expected = math.fsum(values) / len(values)
        if not math.isclose(mean, expected, rel_tol=1e-9, abs_tol=1e-12):
            raise _fail(mpath, f"the mean of its values ({expected!r})", mean)
    interval, ipath = _key(stat, path, "interval"), _join(path, "interval")
    if len(values) < 2:
        if interval is not None:
            raise _fail(ipath, "null (fewer than two values)", interval)
        return
    if not isinstance(interval, list) or len(interval) != 2:
        raise _fail(ipath, "a list [low, high] (two or more values)", interval)
    _float(interval[0], f"{ipath}[0]")
    _float(interval[1], f"{ipath}[1]")
    if not interval[0] <= mean <= interval[1]:
        raise _fail(ipath, f"an interval [low, high] around the mean {mean!r}", interval)


def _point(point: Any, path: str, metrics: set[str]) -> None:
    _dict(point, path)
    _float(_key(point, path, "epsilon"), _join(path, "epsilon"), nullable=True, low=0)
    _str_list(_key(point, path, "runs"), _join(path, "runs"))
    for i, seed in enumerate(_list(_key(point, path, "seeds"), _join(path, "seeds"), "ints")):
        _int(seed, f"{_join(path, 'seeds')}[{i}]", low=0)
    _int(_key(point, path, "n_seeds"), _join(path, "n_seeds"), low=1)
    _bool(_key(point, path, "single_seed"), _join(path, "single_seed"))
    claims = point.get("epsilon_claims") or {}
    for name, bound in _dict(claims, _join(path, "epsilon_claims")).items():
        _float(bound, _join(_join(path, 'epsilon_claims'), name), low=0)
    if point["single_seed"] != (point["n_seeds"] < 2):
        raise _fail(_join(path, "single_seed"), f"{point['n_seeds'] < 2} (n_seeds {point['n_seeds']})",
                    point["single_seed"])
    stats, spath = _dict(_key(point, path, "metrics"), _join(path, "metrics")), _join(path, "metrics")
    for name, stat in stats.items():
        if name not in metrics:
            raise _fail(spath, "metrics the curve lists in 'metrics'", name)
        _stat(stat, _join(spath, name))
        if stat["n"] > point["n_seeds"]:
            raise _fail(_join(_join(spath, name), "n"), f"at most n_seeds ({point['n_seeds']})", stat["n"])


def check_curve(curve: Any, path: str) -> None:
    """One curve of the frontier at ``path``."""
    _dict(curve, path)
    for key in ("id", "label", "defense"):
        _str(_key(curve, path, key), _join(path, key))
    _dict(_key(curve, path, "params"), _join(path, "params"))
    match, mpath = _dict(_key(curve, path, "match"), _join(path, "match")), _join(path, "match")
    _str(_key(match, mpath, "attack"), _join(mpath, "attack"))
    _dict(_key(match, mpath, "setting"), _join(mpath, "setting"))
    names: dict[str, str] = {}
    mlist = _join(path, "metrics")
    for i, m in enumerate(_list(_key(curve, path, "metrics"), mlist, "{name, kind}")):
        _dict(m, f"{mlist}[{i}]")
        names[_str(_key(m, f"{mlist}[{i}]", "name"), f"{mlist}[{i}].name")] = m["kind"]
        _options(_key(m, f"{mlist}[{i}]", "kind"), f"{mlist}[{i}].kind", METRIC_KINDS)
    utility = _key(curve, path, "utility_metric")
    _opt_str(utility, _join(path, "utility_metric"))
    if utility is not None and names.get(utility) != "utility":
        raise _fail(_join(path, "utility_metric"), "one of the curve's utility metrics or null", utility)
    points = _list(_key(curve, path, "points"), _join(path, "points"), "points")
    for i, p in enumerate(points):
        _point(p, f"{_join(path, 'points')}[{i}]", set(names))
        if p["epsilon"] is None and i != len(points) - 1:
            raise _fail(f"{_join(path, 'points')}[{i}].epsilon",
                        "a number (infinity, null, comes last)", None)
    baseline = _key(curve, path, "baseline")
    if baseline is not None:
        bpath = _join(path, "baseline")
        _point(baseline, bpath, set(names))
        _str(_key(baseline, bpath, "defense"), _join(bpath, "defense"))
        if baseline["epsilon"] is not None:
            raise _fail(_join(bpath, "epsilon"), "null (the undefended baseline is at infinity)",
                        baseline["epsilon"])


def check_verdict(verdict: Any, path: str, curves: set[str]) -> None:
    """One verdict of the frontier at ``path``."""
    _dict(verdict, path)
    for key in ("claim", "defense", "statement", "source", "kind", "metric", "verdict", "reason"):
        _str(_key(verdict, path, key), _join(path, key))
    _options(_key(verdict, path, "status"), _join(path, "status"), STATUSES)
    status, text = verdict["status"], verdict["verdict"]
    if (text != status) if status != "not judgeable" else not text.startswith("not judgeable: "):
        expected = "'not judgeable: <reason>'" if status == "not judgeable" else repr(status)
        raise _fail(_join(path, "verdict"), f"{expected} (its status)", text)
    if _str(_key(verdict, path, "curve"), _join(path, "curve")) not in curves:
        raise _fail(_join(path, "curve"), "the id of one of the frontier's curves", verdict["curve"])
    epath = _join(path, "evidence")
    for i, e in enumerate(_list(_key(verdict, path, "evidence"), epath, "point evidence")):
        ip = f"{epath}[{i}]"
        _dict(e, ip)
        _float(_key(e, ip, "epsilon"), _join(ip, "epsilon"), low=0)
        _str(_key(e, ip, "quantity"), _join(ip, "quantity"))
        _opt_str(_key(e, ip, "against"), _join(ip, "against"))
        iv = _key(e, ip, "interval")
        if iv is not None and (not isinstance(iv, list) or len(iv) != 2):
            raise _fail(_join(ip, "interval"), "a list [low, high] or null", iv)
        _options(_key(e, ip, "side"), _join(ip, "side"), SIDES, nullable=True)


def validate_frontier(frontier: Any) -> dict:
    """Check ``frontier`` (raises :class:`~audit.core.errors.InvalidParameterError` naming the
    first bad key path) and return it."""
    _dict(frontier, "")
    if _key(frontier, "", "kind") != KIND:
        raise _fail("kind", repr(KIND), frontier["kind"])
    if _key(frontier, "", "schema_version") != SCHEMA_VERSION:
        raise _fail("schema_version", repr(SCHEMA_VERSION), frontier["schema_version"])
    _float(_key(frontier, "", "confidence"), "confidence", low=0, high=1)
    if not 0 < frontier["confidence"] < 1:
        raise _fail("confidence", "a number in the range (0, 1)", frontier["confidence"])
    _int(_key(frontier, "", "runs"), "runs", low=0)
    ids = set()
    for i, c in enumerate(_list(_key(frontier, "", "curves"), "curves", "curves")):
        check_curve(c, f"curves[{i}]")
        if c["id"] in ids:
            raise _fail(f"curves[{i}].id", "unique among the curves", c["id"])
        ids.add(c["id"])
    for i, v in enumerate(_list(_key(frontier, "", "verdicts"), "verdicts", "verdicts")):
        check_verdict(v, f"verdicts[{i}]", ids)
    return frontier


__all__ = ["METRIC_KINDS", "SIDES", "check_curve", "check_verdict", "validate_frontier"]
