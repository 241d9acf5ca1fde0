"""The compliance report's JSON Schema and its check (``kind: "compliance-report"``).

Published at ``reports/schemas/compliance-report-<version>.schema.json``; the report itself is
built by :mod:`audit.compliance.compliance_report` and rendered by :mod:`reports.compliance_render`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.core.errors import InvalidParameterError

SCHEMA_VERSION = "1.0"
KIND = "compliance-report"
SCHEMA_PATH = Path(__file__).with_name("schemas") / f"compliance-report-{SCHEMA_VERSION}.schema.json"


def validate_compliance(report: Any) -> dict:
    """Validate ``report`` against the published JSON Schema (clear error naming the path)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    if not isinstance(report, dict) or report.get("kind") != KIND:
        raise InvalidParameterError(
            f"Invalid compliance report: 'kind' must be {KIND!r}. Got "
            f"{report.get('kind') if isinstance(report, dict) else type(report).__name__!r} instead.")
    if report.get("schema_version") != SCHEMA_VERSION:
        raise InvalidParameterError(
            f"Invalid compliance report: 'schema_version' must be {SCHEMA_VERSION!r} (this fedaudit reads "
            f"that version). Got {report.get('schema_version')!r} instead.")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(report), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.path).lstrip(".") or "(top level)"
        raise InvalidParameterError(f"Invalid compliance report: {where!r}: {e.message}.")
    return report
