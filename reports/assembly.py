"""Assemble findings into the versioned report dict and write report.json + report.html.

Everything is rendered in memory first and validated; only then are the files written,
each atomically, so a failure leaves no partial report behind.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from reports.html import render_html
from reports.io import write_json_atomic, write_text_atomic
from reports.ledger import ledger_rows
from reports.schema import SCHEMA_VERSION, validate_report


def assemble_report(
    findings: list[dict[str, Any]],
    *,
    title: str,
    command: str,
    seed: int,
    environment: dict[str, Any],
    notes: list[str],
    runtime_s: float,
) -> dict[str, Any]:
    """The report dict (schema :data:`reports.schema.SCHEMA_VERSION`), with the
    claimed-vs-empirical ``ledger`` of its findings (:func:`reports.ledger.ledger_rows`)."""
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "fedaudit-audit",
        "title": title,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "runtime_s": runtime_s,
        "command": command,
        "seed": seed,
        "environment": environment,
        "notes": notes,
        "findings": findings,
    }
    try:
        report["ledger"] = ledger_rows(findings)
    except (KeyError, TypeError, AttributeError):
        validate_report(report)  # a malformed finding: the error names its key path
        raise
    return validate_report(report)


def write_report(out_dir: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir`` (created if needed)."""
    html = render_html(report)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "report.json", out / "report.html"
    write_json_atomic(json_path, report)
    write_text_atomic(html_path, html)
    return json_path, html_path
