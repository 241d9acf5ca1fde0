"""The privacy-utility frontier of a set of audit runs (issue 24, item 3; ``docs/frontier.md``):
per defense configuration, utility and attack success against the claimed epsilon, each
epsilon point the mean over seeds with a 95% interval, and a verdict per paper claim
(:mod:`reports.frontier_claims`).

Pure: it takes report dicts (``report.json``, already validated) and returns the frontier
dict that ``OUT/frontier.json`` holds (``kind: "fedaudit-frontier"``, checked by
:func:`reports.frontier_schema.validate_frontier`).

* **Curves.** Runs are grouped by defense name and parameters other than the ones that set
  epsilon (:data:`EPSILON_PARAMS`) and the seed, by the empirical-epsilon estimators of its
  findings, and by what the attack saw (the first finding's attack and its parameters, the
  dataset, model, rounds and clients): the ``match`` of the curve, which its undefended
  baseline shares (a baseline has no estimator: it makes no claim to audit). Not the batch
  size: a membership finding records its clients' mean size there, which the seed changes
  (a sweep's runs share one batch size anyway).
* **Points.** Within a curve, runs with the same claimed epsilon (``claim.epsilon``, to 6
  significant digits) are one point; a run without a DP claim is the point at epsilon =
  infinity (``epsilon: null`` in JSON). Runs of an undefended defense (:data:`UNDEFENDED`,
  no DP claim) form no curve: they are the ``baseline`` of every curve with their match
  (the one named by the defense's ``base`` parameter when there are several, else the one
  with the most seeds, then by name).
* **Metrics.** Utility: ``finding["utility"]`` entries (an optional ``{name: number}`` a
  finding may carry), the setting keys :data:`UTILITY_SETTING_KEYS` (membership targets'
  test accuracy) and the metrics :data:`UTILITY_METRIC_NAMES` (FedQSN's global accuracy);
  the curve's primary utility is the first of :data:`UTILITY_PRIORITY` it has. Attack
  success: the metrics whose name starts with one of :data:`ATTACK_PREFIXES` (PSNR,
  including inside / outside the PSI regions, TPR at 1% FPR, the empirical epsilons) and
  ``privacy_audit.estimate.epsilon`` as ``epsilon_emp`` when no metric has that name. A
  name met twice in one report keeps its first value; a null value is left out. A point's
  ``epsilon_claims`` holds, per empirical-epsilon metric that is not compared with the
  claim's own epsilon, the claimed epsilon it is compared with (:func:`epsilon_claims`).
* **Intervals.** Student-t on the seeds' values (each run's metric is one observation):
  ``mean ± t_{(1+c)/2, n-1} · s / sqrt(n)`` with the sample standard deviation ``s``
  (``scipy.stats.t``), c = 0.95. With one value the interval is None and the point is
  flagged ``single_seed``.

Project choices: the grouping keys and metric lists above; the seeds of a point are the
reports' ``seed``; curves and points are in a deterministic order (curves by label, points
by increasing epsilon, infinity last).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reports.frontier_claims import FrontierClaim, judge_all

KIND = "fedaudit-frontier"
SCHEMA_VERSION = "1.0"
CONFIDENCE = 0.95
#: defense parameters that set the claimed epsilon (not part of a curve's identity)
EPSILON_PARAMS = ("noise_multiplier", "target_epsilon", "epsilon", "sigma")
#: defenses without protection: the epsilon = infinity baseline of the curves
UNDEFENDED = ("fedavg", "fedsgd", "none")
UTILITY_SETTING_KEYS = ("test_iou", "iou", "test_accuracy", "target_test_accuracy")
UTILITY_METRIC_NAMES = ("test_iou", "iou", "test_accuracy", "global_accuracy")
UTILITY_PRIORITY = ("test_iou", "iou", "test_accuracy", "target_test_accuracy", "global_accuracy")
ATTACK_PREFIXES = ("psnr", "TPR @ 1.0% FPR", "epsilon_emp")
#: setting keys that belong to a curve's match
MATCH_SETTING = ("dataset", "model", "model_params", "rounds", "clients")


def mean_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``{mean, interval, n, values}`` of ``values``: the Student-t interval of the mean at
    ``confidence`` (None with fewer than two values; ``[m, m]`` when they are all equal)."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return {"mean": None, "interval": None, "n": 0, "values": []}
    mean = math.fsum(xs) / n
    if n < 2:
        return {"mean": mean, "interval": None, "n": 1, "values": xs}
    from scipy.stats import t

    s = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * s / math.sqrt(n)
    return {"mean": mean, "interval": [mean - half, mean + half], "n": n, "values": xs}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def run_metrics(report: Mapping) -> dict[str, tuple[str, float]]:
    """The frontier metrics of one report: name -> (``"utility"`` or ``"attack"``, value)."""
    out: dict[str, tuple[str, float]] = {}

    def put(name: str, kind: str, value: Any) -> None:
        if name not in out and _number(value):
            out[name] = (kind, float(value))

    for f in report["findings"]:
        for name, value in sorted((f.get("utility") or {}).items()):
            put(str(name), "utility", value)
        for key in UTILITY_SETTING_KEYS:
            put(key, "utility", f["setting"].get(key))
        for m in f["metrics"]:
            if m["name"] in UTILITY_METRIC_NAMES:
                put(m["name"], "utility", m["mean"])
            elif m["name"].startswith(ATTACK_PREFIXES):
                put(m["name"], "attack", m["mean"])
        estimate = (f.get("privacy_audit") or {}).get("estimate") or {}
        put("epsilon_emp", "attack", estimate.get("epsilon"))
    return out


def epsilon_claims(report: Mapping) -> dict[str, float]:
    """The claimed epsilon an empirical-epsilon metric is to be compared with, where it is not
    the claim's own: the metric's baseline when that is a claimed epsilon (a membership
    audit's one-run bound is for one example, replace-one, re-accounted from the claim)."""
    out: dict[str, float] = {}
    for f in report["findings"]:
        for m in f["metrics"]:
            base = m.get("baseline") or {}
            if (m["name"].startswith("epsilon_emp") and m["name"] not in out and _number(base.get("mean"))
                    and str(base.get("description", "")).startswith("claimed epsilon")):
                out[m["name"]] = float(base["mean"])
    return out


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=repr)


def run_entry(report: Mapping, run: str | None = None) -> dict[str, Any] | None:
    """What the frontier needs of one report (None for a report without findings)."""
    if not report["findings"]:
        return None
    first = report["findings"][0]
    claim, defense = first["claim"], first["defense"]
    estimates = [((f.get("privacy_audit") or {}).get("estimate") or {}) for f in report["findings"]]
    estimators = sorted({str(e["estimator"]) for e in estimates if e.get("estimator")})
    match = {"attack": first["attack"]["name"], "attack_params": first["attack"]["params"],
             "setting": {k: first["setting"].get(k) for k in MATCH_SETTING}}
    eps = claim.get("epsilon") if claim.get("has_dp") else None
    params = {k: v for k, v in defense["params"].items() if k not in EPSILON_PARAMS}
    return {"run": run, "seed": report.get("seed"), "defense": defense["name"], "params": params,
            "base": defense["params"].get("base"), "epsilon": None if eps is None else float(eps),
            "undefended": defense["name"] in UNDEFENDED and not claim.get("has_dp"),
            "match": match, "estimators": estimators, "metrics": run_metrics(report),
            "epsilon_claims": epsilon_claims(report)}


def _point(entries: Sequence[dict], epsilon: float | None, confidence: float) -> dict[str, Any]:
    names: dict[str, str] = {}
    for e in entries:
        for name, (kind, _) in e["metrics"].items():
            names.setdefault(name, kind)
    seeds = sorted({e["seed"] for e in entries if e["seed"] is not None})
    bounds: dict[str, list[float]] = {}
    for e in entries:
        for name, value in e["epsilon_claims"].items():
            bounds.setdefault(name, []).append(value)
    return {"epsilon": epsilon, "runs": [e["run"] for e in entries if e["run"] is not None],
            "seeds": seeds, "n_seeds": len(entries), "single_seed": len(entries) < 2,
            "epsilon_claims": {k: max(v) for k, v in sorted(bounds.items())},
            "metrics": {name: mean_interval([e["metrics"][name][1] for e in entries
                                             if name in e["metrics"]], confidence)
                        for name in sorted(names)}}


def _points(entries: Sequence[dict], confidence: float) -> list[dict]:
    by_eps: dict[float | None, list[dict]] = {}
    for e in entries:
        key = None if e["epsilon"] is None else float(f"{e['epsilon']:.6g}")
        by_eps.setdefault(key, []).append(e)
    out = []
    for key in sorted(by_eps, key=lambda k: (k is None, k or 0.0)):
        group = by_eps[key]
        eps = None if key is None else math.fsum(e["epsilon"] for e in group) / len(group)
        out.append(_point(group, eps, confidence))
    return out


def _baseline_name(curve: dict, options: Mapping[str, list[dict]]) -> str | None:
    """The undefended defense for ``curve`` among ``options`` (name -> runs with its match):
    the one its ``base`` parameter names, else the one with the most runs, then by name."""
    if not options:
        return None
    if curve["_base"] in options:
        return curve["_base"]
    return max(sorted(options), key=lambda n: len(options[n]))


def _label(curve: dict, siblings: Sequence[dict]) -> str:
    """``defense · attack`` and the parameters in which it differs from the defense's other curves."""
    def flat(c: dict) -> dict[str, str]:
        out = {k: _canonical(v) for k, v in c["params"].items()}
        out.update({f"attack.{k}": _canonical(v) for k, v in c["match"]["attack_params"].items()})
        out.update({k: _canonical(v) for k, v in c["match"]["setting"].items()})
        out["estimator"] = ",".join(c["estimators"]) or "none"
        return out

    mine, others = flat(curve), [flat(c) for c in siblings if c is not curve]
    differ = [k for k in sorted(mine) if any(o.get(k) != mine[k] for o in others)]
    extra = ", ".join(f"{k}={mine[k].strip(chr(34))}" for k in differ)
    return f"{curve['defense']} \u00b7 {curve['match']['attack']}" + (f" ({extra})" if extra else "")


def build_frontier(reports: Sequence[Mapping], *, runs: Sequence[str] | None = None,
                   claims: Iterable[FrontierClaim] | None = None,
                   confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The frontier of ``reports`` (report dicts; ``runs`` names each, e.g. its run
    directory) with a verdict per claim (default :data:`~reports.frontier_claims.BUILTIN_CLAIMS`)
    about a defense that has a curve."""
    names = list(runs) if runs is not None else [None] * len(reports)
    if len(names) != len(reports):
        raise ValueError(f"build_frontier: {len(reports)} reports but {len(names)} run names")
    entries = [e for r, n in zip(reports, names) if (e := run_entry(r, n)) is not None]
    baselines: dict[str, dict[str, list[dict]]] = {}
    groups: dict[str, list[dict]] = {}
    for e in entries:
        match = _canonical(e["match"])
        if e["undefended"]:
            baselines.setdefault(match, {}).setdefault(e["defense"], []).append(e)
        else:
            groups.setdefault(_canonical([e["defense"], e["params"], e["match"], e["estimators"]]),
                              []).append(e)
    curves = []
    for key, group in groups.items():
        first = group[0]
        curves.append({"id": f"{first['defense']}-{hashlib.sha256(key.encode()).hexdigest()[:8]}",
                       "defense": first["defense"], "params": first["params"], "match": first["match"],
                       "estimators": first["estimators"], "_base": first["base"], "_entries": group})
    for c in curves:
        c["label"] = _label(c, [o for o in curves if o["defense"] == c["defense"]])
        group = c.pop("_entries")
        c["points"] = _points(group, confidence)
        options = baselines.get(_canonical(c["match"]), {})
        base = _baseline_name(c, options)
        c.pop("_base")
        base_runs = options[base] if base is not None else []
        c["baseline"] = None if base is None else {"defense": base, **_point(base_runs, None, confidence)}
        kinds = {n: k for e in group + base_runs for n, (k, _) in e["metrics"].items()}
        c["metrics"] = [{"name": n, "kind": kinds[n]}
                        for n in sorted(kinds, key=lambda n: (kinds[n] != "utility", n))]
        utility = [m["name"] for m in c["metrics"] if m["kind"] == "utility"]
        c["utility_metric"] = next((u for u in UTILITY_PRIORITY if u in utility),
                                   utility[0] if utility else None)
    curves.sort(key=lambda c: (c["defense"], c["label"], c["id"]))
    from reports.frontier_claims import EPSILON_RTOL, MIN_EPSILON_POINTS, MIN_SEEDS

    return {"kind": KIND, "schema_version": SCHEMA_VERSION, "confidence": confidence,
            "interval": "Student-t over seeds (one value per run)",
            "requirements": {"epsilon_points": MIN_EPSILON_POINTS, "seeds": MIN_SEEDS,
                             "epsilon_rtol": EPSILON_RTOL},
            "runs": len(entries), "curves": curves, "verdicts": judge_all(curves, claims)}


__all__ = ["ATTACK_PREFIXES", "CONFIDENCE", "EPSILON_PARAMS", "KIND", "SCHEMA_VERSION", "UNDEFENDED",
           "UTILITY_METRIC_NAMES", "UTILITY_PRIORITY", "UTILITY_SETTING_KEYS", "build_frontier",
           "mean_interval", "run_entry", "run_metrics"]
