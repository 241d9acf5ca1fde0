"""HTML rendering of an audit report, and the display helpers shared with Markdown.

The page is self-contained (inline CSS, images as data URIs, a Content-Security-Policy
that forbids scripts and remote loads) so it can be opened offline or attached to a
ticket. Every string from the report goes through jinja2 autoescaping.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from reports.formatting import NA, PRIMARY_LABEL, format_number
from reports.ledger_render import ledger_view, report_ledger
from reports.schema import SCHEMA_VERSION, validate_report

NO_DP_CLAIM = "no DP claim"
HEADLINE_METRIC = "psnr"
#: significant digits of the per-layer budget table (shares and ε_l differ in the 3rd digit)
PARTS_DIGITS = 4
#: a per-layer budget table with more rows than this is folded into a <details> element
PARTS_COLLAPSE_ABOVE = 8
#: title of the table listing a claim and its alternatives (PRIMARY_LABEL: the primary's label)
CLAIMS_TITLE = "Claims for this run"
_LAYER_KEYS = ("epsilon", "noise_multiplier", "clip_norm", "share")
_PART_LABELS = {"noise_multiplier": "noise multiplier", "sensitivity_factor": "sensitivity factor",
                "clip_norm": "clip norm", "epsilon": "\u03b5"}
_PART_PLURALS = {"noise_multiplier": "noise multipliers",
                 "sensitivity_factor": "sensitivity factors", "clip_norm": "clip norms"}
_DIRECTION_LABELS = {
    "higher-leaks-more": "higher leaks more",
    "lower-leaks-more": "lower leaks more",
}


#: setting entries some findings carry (membership targets' utility), with their labels
_OPTIONAL_SETTING = (
    ("target_train_accuracy", "target accuracy on its training data"),
    ("target_test_accuracy", "target accuracy on non-members"),
)

def format_value(value: Any) -> str:
    """Format a parameter value: JSON spelling for bool/null, 6 significant digits."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.6g}"
        return text + ".0" if text.lstrip("-").isdigit() else text
    if isinstance(value, dict) and not value:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return str(value)


def format_advantage(mean: float | None, baseline_mean: float | None) -> str:
    """Signed difference ``mean - baseline_mean`` (``"n/a"`` if either is missing)."""
    if mean is None or baseline_mean is None:
        return NA
    diff = float(mean) - float(baseline_mean)
    text = format_number(diff)
    return text if text.startswith("-") or text == "0" else "+" + text


def _or_na(value: Any) -> str:
    return NA if value is None else format_value(value)


def _params(params: dict) -> list[tuple[str, str]]:
    return [(k, format_value(v)) for k, v in sorted(params.items())]


def _metric_view(metric: dict) -> dict:
    baseline = metric["baseline"] or {}
    direction = _DIRECTION_LABELS[metric["direction"]]
    advantage = format_advantage(metric["mean"], baseline.get("mean"))
    return {
        "name": metric["name"],
        "unit": metric["unit"],
        "direction": direction,
        "arrow": "\u2191" if metric["direction"] == "higher-leaks-more" else "\u2193",
        "mean": format_number(metric["mean"]),
        "worst": format_number(metric["worst"]),
        "baseline_mean": format_number(baseline.get("mean")) if baseline else NA,
        "baseline_worst": format_number(baseline.get("worst")) if baseline else NA,
        "baseline_description": baseline.get("description") if baseline else None,
        "advantage": advantage,
        "advantage_text": advantage if advantage == NA else f"{advantage} ({direction})",
        "note": metric["note"],
        "per_item": [format_number(v) for v in metric["per_item"]],
    }


def _claim_view(claim: dict, audit: dict | None = None) -> dict:
    """Display strings for a finding's claim; ``audit`` is its ``privacy_audit``, if any."""
    rows: list[tuple[str, str]] = []
    if claim["has_dp"]:
        rows = [
            ("epsilon (\u03b5)", _or_na(claim["epsilon"])),
            ("delta (\u03b4)", _or_na(claim["delta"])),
            ("unit of privacy", claim["unit"] or NA),
            ("trust model", claim["trust_model"] or NA),
            ("mechanism", claim["mechanism"] or NA),
            ("accountant", claim["accountant"] or NA),
            ("compositions", _or_na(claim["compositions"])),
        ]
    return {"has_dp": claim["has_dp"], "rows": rows, "statement": claim["statement"],
            "short": claim_summary(claim), "parts": _parts_view(claim),
            "alternatives": _alternatives_view(claim, audit)}


def _parts_view(claim: dict, *, collapsed: bool | None = None) -> dict | None:
    """Display strings for the per-part budget of a composed claim, or None.

    ``claim["parts"]`` may be absent (older reports), empty, a list (from JSON) or a tuple
    (from :meth:`audit.core.claims.PrivacyClaim.to_dict`). Per-layer rows (name, epsilon, noise
    multiplier, clip norm, share) give the per-layer budget table (``kind`` ``"layers"``);
    any other rows, e.g. the per-round ``{"name", "noise_multiplier",
    "sensitivity_factor"}`` of an alternative claim, give a generic table (``kind``
    ``"generic"``) with one column per key. ``collapsed`` overrides the row-count rule.
    """
    parts = claim.get("parts") or ()
    if not parts:
        return None
    if not all(isinstance(p, dict) and all(k in p for k in _LAYER_KEYS) for p in parts):
        return _generic_parts_view(parts, collapsed=collapsed)
    num = lambda v: format_number(v, PARTS_DIGITS)  # noqa: E731
    rows = [{
        "name": str(p["name"]),
        "share": num(p["share"]),
        "noise_multiplier": num(p["noise_multiplier"]),
        "clip_norm": num(p["clip_norm"]),
        "sigma": num(float(p["noise_multiplier"]) * float(p["clip_norm"])),
        "epsilon": num(p["epsilon"]),
    } for p in parts]
    epsilons = [float(p["epsilon"]) for p in parts]
    low, high = num(min(epsilons)), num(max(epsilons))
    count = f"{len(rows)} layer{'s' if len(rows) != 1 else ''}"
    return {
        "kind": "layers",
        "title": f"Per-layer budget (composes to \u03b5 = {num(claim.get('epsilon'))})",
        "rows": rows,
        "count": len(rows),
        "min_epsilon": low,
        "max_epsilon": high,
        "summary": f"{count}, \u03b5_l from {low} to {high}" if low != high
                   else f"{count}, \u03b5_l = {low} each",
        "collapsed": len(rows) > PARTS_COLLAPSE_ABOVE if collapsed is None else collapsed,
    }


def _part_cell(value: Any) -> str:
    if _is_number(value):
        return format_number(value, PARTS_DIGITS)
    return NA if value is None else format_value(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _generic_parts_view(parts: Any, *, collapsed: bool | None = None) -> dict:
    """Parts whose rows are not per-layer budgets: one column per key (name first)."""
    parts = [p if isinstance(p, dict) else {"name": p} for p in parts]
    columns: list[str] = []
    for p in parts:
        columns += [k for k in p if k != "name" and k not in columns]
    names = [str(p.get("name", "")) for p in parts]
    noun = "round" if all(n.startswith("round") for n in names) else "part"
    count = f"{len(parts)} {noun}{'s' if len(parts) != 1 else ''}"
    ranges = []
    for key in columns:
        values = [p.get(key) for p in parts]
        if not all(_is_number(v) for v in values):
            continue
        low, high = _part_cell(min(values)), _part_cell(max(values))
        label = _PART_PLURALS.get(key, key.replace("_", " "))
        ranges.append(f"{label} from {low} to {high}" if low != high else f"{label} {low} each")
    return {
        "kind": "generic",
        "title": f"Per-{noun} parameters",
        "name_header": noun.capitalize(),
        "headers": [_PART_LABELS.get(k, k.replace("_", " ")) for k in columns],
        "rows": [{"name": n, "cells": [_part_cell(p.get(k)) for k in columns]}
                 for n, p in zip(names, parts)],
        "count": len(parts),
        "summary": f"{count}; per-{noun} " + ", ".join(ranges) if ranges else count,
        "collapsed": len(parts) > PARTS_COLLAPSE_ABOVE if collapsed is None else collapsed,
    }


def _verdict_reason(reason: Any) -> str:
    text = str(reason or "").strip().rstrip(".")
    if text.startswith(("lower bound", "estimate ")):
        text = "\u03b5_emp " + text
    return text


def _alternatives_view(claim: dict, audit: dict | None) -> dict | None:
    """The "Claims for this run" table of a claim with alternatives, or None without any.

    One row per claim, the primary first (labelled with its ``label`` or "claim"); when
    the finding has an empirical-epsilon audit, each row gets its verdict (the primary's
    from ``privacy_audit.verdict``, an alternative's from the entry of
    ``privacy_audit.alternatives`` with the same label) and a sentence names the claims the
    evidence contradicts. Audited alternatives that match no claim get rows of their own.
    """
    alternatives = list(claim.get("alternatives") or ())
    audit = audit if isinstance(audit, dict) else {}
    audited = [a for a in (audit.get("alternatives") or ()) if isinstance(a, dict)]
    if not alternatives and not audited:
        return None
    show_verdicts = bool(audited) or isinstance(audit.get("verdict"), str)

    def row(c: dict, label: str, verdict: Any, reason: Any, *, primary: bool) -> dict:
        verdict = verdict if isinstance(verdict, str) else None
        return {
            "label": label, "primary": primary,
            "epsilon": format_number(c.get("epsilon")),
            "delta": format_number(c.get("delta")),
            "unit": c.get("unit") or NA,
            "trust_model": c.get("trust_model") or NA,
            "accountant": c.get("accountant") or NA,
            "verdict": verdict or NA,
            "violation": verdict == "VIOLATION",
            "reason": _verdict_reason(reason),
            "statement": c.get("statement"),
            "parts": _parts_view(c, collapsed=True) if not primary else None,
        }

    rows = [row(claim, claim.get("label") or PRIMARY_LABEL, audit.get("verdict"),
                audit.get("reason"), primary=True)]
    unused = list(audited)
    for alt in alternatives:
        label = alt.get("label") or f"alternative {len(rows)}"
        match = next((a for a in unused if a.get("label") == label), None)
        if match is not None:
            unused.remove(match)
        rows.append(row(alt, label, match and match.get("verdict"),
                        match and match.get("reason"), primary=False))
    for a in unused:  # audited against a claim the report does not list
        c = {"epsilon": a.get("epsilon_claim"), "delta": a.get("delta"), "unit": a.get("unit"),
             "trust_model": a.get("trust_model")}
        rows.append(row(c, str(a.get("label")), a.get("verdict"), a.get("reason"),
                        primary=False))
    verdict_text = None
    if show_verdicts:
        violated = [r for r in rows if r["violation"]]
        if violated:
            verdict_text = "The evidence contradicts: " + "; ".join(
                f"{r['label']} (\u03b5 = {r['epsilon']})" + (f" \u2014 {r['reason']}"
                                                             if r["reason"] else "")
                for r in violated) + "."
        elif any(r["verdict"] == "INCONCLUSIVE" for r in rows):
            verdict_text = ("The evidence contradicts none of the claims, but the audit was too weak "
                            "to judge: " + "; ".join(r["label"] for r in rows if r["verdict"] == "INCONCLUSIVE")
                            + " (above the most this audit could certify).")
        elif all(r["verdict"] != NA for r in rows):
            verdict_text = "The evidence contradicts none of the claims."
        else:
            verdict_text = "The evidence contradicts none of the audited claims."
    others = len(rows) - 1
    return {
        "title": CLAIMS_TITLE,
        "rows": rows,
        "show_verdicts": show_verdicts,
        "verdict_text": verdict_text,
        "others": f"+ {others} other claim{'s' if others != 1 else ''}",
        "details": [r for r in rows[1:] if r["statement"] or r["parts"]],
    }


def claim_summary(claim: dict) -> str:
    """Short form of a privacy claim, e.g. ``"ε = 8, δ = 1e-05 (central)"``."""
    if not claim["has_dp"]:
        return NO_DP_CLAIM
    text = f"\u03b5 = {format_number(claim['epsilon'])}"
    if claim["delta"] is not None:
        text += f", \u03b4 = {format_number(claim['delta'])}"
    if claim["trust_model"]:
        text += f" ({claim['trust_model']})"
    return text


def _headline(metrics: list[dict]) -> dict | None:
    for metric in metrics:
        if metric["name"].lower() == HEADLINE_METRIC:
            return metric
    return metrics[0] if metrics else None


def finding_view(finding: dict, index: int) -> dict:
    """Display strings for one finding (shared by the HTML and Markdown renderers)."""
    metrics = [_metric_view(m) for m in finding["metrics"]]
    headline = _headline(metrics)
    setting = finding["setting"]
    setting_rows = [
        ("dataset", setting["dataset"]),
        ("model", setting["model"]),
        ("model params", format_value(setting["model_params"]) or "none"),
    ] + [(key.replace("_", " "), str(setting[key]))
         for key in ("batch_size", "num_targets", "local_steps", "rounds", "clients")] + [
        (label, f"{setting[key]:.3f}") for key, label in _OPTIONAL_SETTING
        if isinstance(setting.get(key), (int, float))] + (
        [("local training", format_value(setting["local_training"]))] if setting.get("local_training") else []) + (
        [("simulation", "{path}: {reason}; {sampling} client sampling".format(**setting["simulation"]))]
        if setting.get("simulation") else []) + [
        (f"held-out {k.replace('_', ' ')}", f"{v:.3f}") for k, v in (finding.get("utility") or {}).items()]
    images = finding["images"]
    from reports.exposure_render import exposure_view  # it builds on this module's helpers

    return {
        "index": index,
        "anchor": f"finding-{index}",
        "id": finding["id"],
        "title": finding["title"],
        "defense": finding["defense"]["name"],
        "defense_params": _params(finding["defense"]["params"]),
        "claim": _claim_view(finding["claim"], finding.get("privacy_audit")),
        "threat": finding["threat_model"],
        "attack": finding["attack"]["name"],
        "attack_family": finding["attack"]["family"],
        "attack_params": _params(finding["attack"]["params"]),
        "setting_rows": setting_rows,
        "metrics": metrics,
        "headline": headline,
        "notes": [(m["name"], m["note"]) for m in metrics if m["note"]],
        "baselines": [(m["name"], m["baseline_description"]) for m in metrics
                      if m["baseline_description"]],
        "image": None if images is None else {"png_base64": images["png_base64"],
                                              "caption": images["caption"]},
        "text_samples": [(t["truth"], t["recovered"]) for t in finding.get("text_samples") or []],
        "runtime": f"{format_number(finding['runtime_s'])} s",
        "exposure": exposure_view(finding.get("exposure")),
    }


def report_view(report: dict) -> dict:
    """Validate ``report`` and build the display strings both renderers use."""
    validate_report(report)
    env = report["environment"]
    findings = [finding_view(f, i) for i, f in enumerate(report["findings"], start=1)]
    return {
        "title": report["title"],
        "created": report["created_utc"],
        "runtime": f"{format_number(report['runtime_s'])} s",
        "command": report["command"],
        "seed": report["seed"],
        "env": {
            "fedaudit": env["fedaudit"], "python": env["python"], "platform": env["platform"],
            "device": env["device"], "threads": env["threads"],
            "packages": sorted(env["packages"].items()),
        },
        "notes": report["notes"],
        "findings": findings,
        "ledger": ledger_view(report_ledger(report)),  # older reports: from the findings
        # the page's styles for "Claims for this run" tables, only where there is one
        "has_alternatives": any(f["claim"]["alternatives"] for f in findings),
        "schema_version": SCHEMA_VERSION,
    }


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: dict) -> str:
    """Render an audit report as a self-contained HTML page.

    The page has a summary table (one row per finding: defense, claimed ε, attack, and
    the headline metric — PSNR if present, else the first metric — against its
    baseline), the claimed-vs-empirical ledger, command, seed, environment, notes, and one
    section per finding with the defense, privacy claim, threat model, attack, setting,
    a results table with the advantage over the baseline, metric notes and the image
    grid as an inline PNG.

    Args:
        report: A report that passes :func:`~reports.schema.validate_report`.

    Returns:
        The HTML text; equal reports give identical text.

    Raises:
        InvalidParameterError: If ``report`` is not a valid report.
    """
    view = report_view(report)
    return _environment().get_template("report.html.j2").render(report=view)
