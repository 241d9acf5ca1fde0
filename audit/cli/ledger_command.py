"""``fedaudit ledger RUN_DIRS...``: the claimed-vs-empirical ledger of audit runs, one table.

Each RUN_DIR is an audit's ``--out`` directory (its ``report.json``), a ``report.json`` file,
or a directory of such run directories (a sweep's ``runs/``: every ``report.json`` below it,
in path order). Every report is validated before anything is printed or written; the
ledger rows are those of :func:`reports.ledger.ledger_rows`, each naming its run.

Exit status: 0, or 1 when ``--fail-on`` names something the ledger holds (a VIOLATION, an
INCONCLUSIVE verdict, a lint error), so a pipeline can gate on it; 2 on bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from audit.cli.common import _fail, report_paths
from audit.core.errors import InvalidParameterError

LEDGER_FORMATS = ("text", "md", "json")
FAIL_ON = ("never", "violation", "inconclusive", "lint-error")


def ledger_of(run_args: tuple[str, ...]) -> list[dict]:
    """The ledger rows of every report under ``run_args`` (validated; a report named twice is
    read once)."""
    from reports.io import load_report
    from reports.ledger import ledger_rows

    if not run_args:
        raise InvalidParameterError(
            "The 'RUN_DIRS' argument of fedaudit ledger must name at least one run directory. "
            "Got none instead.")
    paths = list(dict.fromkeys(p.resolve() for a in run_args for p in report_paths(a, "ledger")))
    rows: list[dict] = []
    for path in paths:
        report = load_report(path)
        run = str(path.parent) if path.name == "report.json" else str(path)
        rows += ledger_rows(report["findings"], run=run)
    return rows


def _failing(rows: list[dict], fail_on: str) -> list[str]:
    if fail_on == "violation":
        return [f"{r['run']}: {r['finding']}" for r in rows if r["verdict"] == "VIOLATION"]
    if fail_on == "inconclusive":
        return [f"{r['run']}: {r['finding']}" for r in rows if r["verdict"] in ("VIOLATION", "INCONCLUSIVE")]
    if fail_on == "lint-error":
        return [f"{r['run']}: {r['finding']}" for r in rows
                if r["verdict"] == "VIOLATION" or r["lint_summary"]["error"]]
    return []


@click.command("ledger")
@click.argument("run_dirs", nargs=-1)
@click.option("--format", "fmt", default="text", show_default=True, help="text | md | json")
@click.option("--out", "out", default=None, help="Write the ledger to this file instead of printing it.")
@click.option("--fail-on", "fail_on", default="never", show_default=True,
              help="Exit 1 when the ledger holds: never | violation | inconclusive (or a violation) | "
                   "lint-error (or a violation).")
def ledger_cmd(run_dirs: tuple[str, ...], fmt: str, out: str | None, fail_on: str) -> None:
    """Print the claimed-vs-empirical ledger of audit runs (RUN_DIR: an audit's --out
    directory, a report.json, or a directory of run directories): per claim, epsilon,
    delta, unit, adjacency, accountant and assumptions beside the estimator, epsilon_emp
    with its interval, the power ceiling and the canaries/trials, the verdict, and the
    accounting lint findings."""
    try:
        if fmt not in LEDGER_FORMATS:
            raise InvalidParameterError(
                "The 'format' parameter of fedaudit ledger must be a str among {"
                + ", ".join(repr(f) for f in LEDGER_FORMATS) + f"}}. Got {fmt!r} instead.")
        if fail_on not in FAIL_ON:
            raise InvalidParameterError(
                "The 'fail-on' parameter of fedaudit ledger must be a str among {"
                + ", ".join(repr(f) for f in FAIL_ON) + f"}}. Got {fail_on!r} instead.")
        if out is not None and (Path(out).is_dir() or not Path(out).parent.is_dir()):
            raise InvalidParameterError(
                f"The 'out' parameter of fedaudit ledger must be a file path in an existing directory. "
                f"Got {out!r} instead.")
        rows = ledger_of(run_dirs)
        from reports.ledger_render import ledger_markdown, ledger_text

        if fmt == "json":
            text = json.dumps({"kind": "fedaudit-ledger", "rows": rows}, indent=2) + "\n"
        elif fmt == "md":
            lines = ledger_markdown(rows, level=1)
            text = "\n".join(lines or ["# Claimed vs empirical ledger", "", ledger_text([]).strip()]) + "\n"
        else:
            text = ledger_text(rows)
            text = text if text.endswith("\n") else text + "\n"
        if out is None:
            click.echo(text, nl=False)
        else:
            from reports.io import write_text_atomic

            write_text_atomic(out, text)
            click.echo(f"wrote {out} ({len(rows)} row(s))")
        failing = _failing(rows, fail_on)
        if failing:
            click.echo(f"--fail-on {fail_on}: {len(failing)} row(s): " + "; ".join(failing), err=True)
            sys.exit(1)
    except InvalidParameterError as exc:
        _fail(str(exc))


__all__ = ["FAIL_ON", "LEDGER_FORMATS", "ledger_cmd", "ledger_of"]
