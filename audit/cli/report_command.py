"""``fedaudit report``: audit runs combined into one compliance report judged against a
policy, or one audit report.json re-rendered."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from audit.cli.common import _compliance, _fail
from audit.core.errors import InvalidParameterError
from reports.compliance_render import COMPLIANCE_FORMATS as REPORT_FORMATS




def _rerender(report_json: str, fmt: str, output: str | None) -> None:
    """Re-render one audit report.json as HTML or Markdown (beside it by default)."""
    from reports.html import render_html
    from reports.io import load_report, write_text_atomic
    from reports.markdown import render_markdown

    if fmt not in ("html", "md"):
        raise InvalidParameterError(
            f"The 'format' parameter of fedaudit report REPORT_JSON must be a str among {{'html', 'md'}} "
            f"(compliance reports of run directories also take 'pdf' and 'json'). Got {fmt!r} instead.")
    data = load_report(report_json)
    text = render_html(data) if fmt == "html" else render_markdown(data)
    target = Path(output) if output else Path(report_json).with_suffix(f".{fmt}")
    write_text_atomic(target, text)
    click.echo(f"wrote {target}")


@click.command("report")
@click.argument("run_dirs", nargs=-1)
@click.option("--policy", "policy_file", default=None, help="Policy file (TOML or YAML; default: the shipped policy).")
@click.option("--format", "fmt", default="html", show_default=True, help="html | md | pdf | json")
@click.option("--out", "--output", "out", default=None,
              help="Output file (required for a compliance report; a re-rendered REPORT_JSON goes beside it by default).")
def report_cmd(run_dirs: tuple[str, ...], policy_file: str | None, fmt: str, out: str | None) -> None:
    """Combine audit runs (RUN_DIR: an audit's --out directory) into one compliance report
    judged against a policy; or, given one REPORT_JSON file, re-render that audit report."""
    try:
        if len(run_dirs) == 1 and run_dirs[0].endswith(".json") and policy_file is None:
            _rerender(run_dirs[0], fmt, out)
            return
        if not out:
            raise InvalidParameterError(
                "The 'out' parameter of fedaudit report must be the compliance report's file. Got None instead.")
        if fmt not in REPORT_FORMATS:
            raise InvalidParameterError(
                "The 'format' parameter of fedaudit report must be a str among {"
                + ", ".join(repr(f) for f in REPORT_FORMATS) + f"}}. Got {fmt!r} instead.")
        command = shlex.join(["fedaudit", "report", *run_dirs, *(["--policy", policy_file] if policy_file else []),
                              "--format", fmt, "--out", out])
        report = _compliance(run_dirs, policy_file, command)
        from audit.compliance.compliance_report import finding_images
        from reports.compliance_render import write_compliance

        write_compliance(report, fmt, out, None if fmt in ("json", "md") else finding_images(run_dirs))
        click.echo(f"{report['verdict']['status']}: wrote {out}")
    except InvalidParameterError as exc:
        _fail(str(exc))
