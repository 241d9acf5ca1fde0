"""The published JSON Schema of the audit report (``report.json``) and its validation.

The schema, ``reports/schemas/audit-report-<SCHEMA_VERSION>.schema.json`` (JSON Schema draft
2020-12), translates what the hand-written :func:`reports.schema.validate_report` checks, so
that tools outside fedaudit can check a report. The hand validator stays the reference: a few
of its checks cannot be written in JSON Schema (unique finding ids, an int rather than a float
with a zero fraction, the calendar of ``created_utc``; the schema's ``description`` lists
them), so a report passes the schema whenever it passes :func:`~reports.schema.validate_report`,
not the other way round.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from audit.core.errors import InvalidParameterError
from reports.schema import SCHEMA_VERSION

AUDIT_SCHEMA_PATH = Path(__file__).with_name("schemas") / f"audit-report-{SCHEMA_VERSION}.schema.json"

_MESSAGE_LIMIT = 200


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(AUDIT_SCHEMA_PATH.read_text(encoding="utf-8"))
    base = jsonschema.Draft202012Validator
    # A report built in memory (before its JSON round trip) holds tuples where the JSON has
    # arrays, e.g. PrivacyClaim.to_dict()'s parts and alternatives: a tuple is a JSON array.
    checker = base.TYPE_CHECKER.redefine(
        "array", lambda _checker, instance: isinstance(instance, (list, tuple)))
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def _where(path: Any) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or "(top level)"


def validate_audit_json_schema(report: Any) -> dict:
    """Validate an audit report against its published JSON Schema.

    Args:
        report: The decoded ``report.json`` object (or the report dict before it is written).

    Returns:
        The same ``report`` object, unchanged.

    Raises:
        InvalidParameterError: If ``report`` does not conform; the one-line message names the
            JSON path of the first error (errors sorted by path) and the schema's message,
            e.g. ``'findings[0].claim.epsilon': -1 is less than the minimum of 0``.
    """
    if not isinstance(report, dict):
        raise InvalidParameterError(
            f"Invalid report: the report must be a JSON object (dict). Got "
            f"{type(report).__name__!r} instead.")
    errors = sorted(_validator().iter_errors(report),
                    key=lambda e: [(isinstance(p, str), p) for p in e.path])
    if errors:
        error = errors[0]
        message = " ".join(error.message.split())
        if len(message) > _MESSAGE_LIMIT:
            message = message[: _MESSAGE_LIMIT - 3] + "..."
        raise InvalidParameterError(f"Invalid report: {_where(error.path)!r}: {message}.")
    return report
