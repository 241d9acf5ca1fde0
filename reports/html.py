"""HTML rendering of an audit report, and the display helpers shared with Markdown.

The page is self-contained (inline CSS, images as data URIs, a Content-Security-Policy
that forbids scripts and remote loads) so it can be opened offline or attached to a
ticket. Every string from the report goes through jinja2 autoescaping.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from reports.schema import SCHEMA_VERSION, validate_report

NA = "n/a"
NO_DP_CLAIM = "no DP claim"
HEADLINE_METRIC = "psnr"
#: significant digits of the per-layer budget table (shares and ε_l differ in the 3rd digit)
PARTS_DIGITS = 4
#: a per-layer budget table with more rows than this is folded into a <details> element
PARTS_COLLAPSE_ABOVE = 8
_DIRECTION_LABELS = {
    "higher-leaks-more": "higher leaks more",
    "lower-leaks-more": "lower leaks more",
}


#: setting entries some findings carry (membership targets' utility), with their labels
_OPTIONAL_SETTING = (
    ("target_train_accuracy", "target accuracy on its training data"),
    ("target_test_accuracy", "target accuracy on non-members"),
)

def format_number(value: float | int | None, digits: int = 3) -> str:
    """Format a number to ``digits`` significant digits for display.

    Plain notation is used between 1e-3 and 1e4 (integers up to 1e4 stay whole),
    scientific notation outside; trailing zeros are dropped. ``None`` gives ``"n/a"``.

    Args:
        value: The number, or None.
        digits: Significant digits.

    Returns:
        The display string, e.g. ``"24.1"``, ``"0.5"``, ``"1.23e-04"``, ``"1e-05"``.
    """
    if value is None:
        return NA
    if isinstance(value, bool):
        return str(value).lower()
    x = float(value)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    magnitude = abs(x)
    if 1e3 <= magnitude < 1e4:
        return f"{x:.0f}"
    if 1e-3 <= magnitude < 1e3:
        decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
        text = f"{x:.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, exponent = f"{x:.{max(digits - 1, 0)}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


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


def _claim_view(claim: dict) -> dict:
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
            "short": claim_summary(claim), "parts": _parts_view(claim)}


def _parts_view(claim: dict) -> dict | None:
    """Display strings for the per-part (per-layer) budget of a composed claim, or None.

    ``claim["parts"]`` may be absent (older reports), empty, a list (from JSON) or a tuple
    (from :meth:`audit.claims.PrivacyClaim.to_dict`).
    """
    parts = claim.get("parts") or ()
    if not parts:
        return None
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
        "title": f"Per-layer budget (composes to \u03b5 = {num(claim.get('epsilon'))})",
        "rows": rows,
        "count": len(rows),
        "min_epsilon": low,
        "max_epsilon": high,
        "summary": f"{count}, \u03b5_l from {low} to {high}" if low != high
                   else f"{count}, \u03b5_l = {low} each",
        "collapsed": len(rows) > PARTS_COLLAPSE_ABOVE,
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
        if isinstance(setting.get(key), (int, float))]
    images = finding["images"]
    return {
        "index": index,
        "anchor": f"finding-{index}",
        "id": finding["id"],
        "title": finding["title"],
        "defense": finding["defense"]["name"],
        "defense_params": _params(finding["defense"]["params"]),
        "claim": _claim_view(finding["claim"]),
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
        "runtime": f"{format_number(finding['runtime_s'])} s",
    }


def report_view(report: dict) -> dict:
    """Validate ``report`` and build the display strings both renderers use."""
    validate_report(report)
    env = report["environment"]
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
        "findings": [finding_view(f, i) for i, f in enumerate(report["findings"], start=1)],
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
    baseline), the run's command, seed and environment, report-wide notes, and one
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
