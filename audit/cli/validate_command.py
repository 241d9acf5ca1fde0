"""``fedaudit validate``: an audit report.json or a compliance report checked against its schema."""

from __future__ import annotations

from pathlib import Path

import click

from audit.cli.common import _fail
from audit.core.errors import InvalidParameterError


@click.command("validate")
@click.argument("path")
def validate_cmd(path: str) -> None:
    """Validate an audit report.json or a compliance report (JSON) against its schema."""
    import json

    try:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InvalidParameterError(f"Cannot validate {path!r}: no such file.") from None
        except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
            raise InvalidParameterError(f"Cannot validate {path!r}: not a JSON file ({exc}).") from None
        if isinstance(data, dict) and data.get("kind") == "compliance-report":
            from reports.compliance_schema import validate_compliance

            validate_compliance(data)
            kind = f"compliance report, schema {data['schema_version']}"
        else:
            from reports.audit_schema import validate_audit_json_schema
            from reports.io import load_report

            data = load_report(path)  # the full check (unique ids, dates, ...)
            validate_audit_json_schema(data)  # and the published JSON Schema
            kind = f"audit report, schema {data['schema_version']}"
        click.echo(f"valid: {path} ({kind})")
    except InvalidParameterError as exc:
        _fail(str(exc))
