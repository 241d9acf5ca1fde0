"""``fedaudit frontier RUN_DIRS...``: the privacy-utility frontier of audit runs and the
verdicts on the papers' claims (:mod:`reports.frontier`), as text, Markdown or JSON.

Each RUN_DIR is an audit's ``--out`` directory (its ``report.json``), a ``report.json`` file,
or a directory of such run directories (a sweep's output: every ``report.json`` below it, in
path order). Every report is validated before anything is printed or written; a report
named twice is read once; the JSON form is validated too
(:func:`reports.frontier_schema.validate_frontier`).

Exit status: 0, or 2 on bad input (one line naming the bad value). The verdicts do not set
the exit status (``fedaudit check`` is the gate).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from audit.cli.common import _fail, report_paths
from audit.core.errors import InvalidParameterError

FRONTIER_FORMATS = ("text", "md", "json")


def frontier_of(run_args: tuple[str, ...]) -> dict:
    """The validated frontier of every report under ``run_args``."""
    from reports.frontier import build_frontier
    from reports.frontier_schema import validate_frontier
    from reports.io import load_report

    if not run_args:
        raise InvalidParameterError(
            "The 'RUN_DIRS' argument of fedaudit frontier must name at least one run directory. "
            "Got none instead.")
    paths = list(dict.fromkeys(p.resolve() for a in run_args for p in report_paths(a, "frontier")))
    reports = [load_report(p) for p in paths]
    runs = [str(p.parent) if p.name == "report.json" else str(p) for p in paths]
    return validate_frontier(build_frontier(reports, runs=runs))


@click.command("frontier")
@click.argument("run_dirs", nargs=-1)
@click.option("--format", "fmt", default="text", show_default=True, help="text | md | json")
@click.option("--out", "out", default=None, help="Write the frontier to this file instead of printing it.")
def frontier_cmd(run_dirs: tuple[str, ...], fmt: str, out: str | None) -> None:
    """Print the privacy-utility frontier of audit runs (RUN_DIR: an audit's --out directory,
    a report.json, or a directory of run directories): per defense configuration, utility and
    attack success against the claimed epsilon (mean over seeds, 95% intervals), and a
    verdict per paper claim (holds, fails, not judgeable: why)."""
    try:
        if fmt not in FRONTIER_FORMATS:
            raise InvalidParameterError(
                "The 'format' parameter of fedaudit frontier must be a str among {"
                + ", ".join(repr(f) for f in FRONTIER_FORMATS) + f"}}. Got {fmt!r} instead.")
        if out is not None and (Path(out).is_dir() or not Path(out).parent.is_dir()):
            raise InvalidParameterError(
                f"The 'out' parameter of fedaudit frontier must be a file path in an existing "
                f"directory. Got {out!r} instead.")
        frontier = frontier_of(run_dirs)
        from reports.frontier_render import frontier_markdown, frontier_text

        if fmt == "json":
            text = json.dumps(frontier, indent=2, sort_keys=True, allow_nan=False) + "\n"
        elif fmt == "md":
            text = frontier_markdown(frontier)
        else:
            text = frontier_text(frontier)
        if out is None:
            click.echo(text, nl=False)
        else:
            from reports.io import write_text_atomic

            write_text_atomic(out, text)
            click.echo(f"wrote {out} ({len(frontier['curves'])} curve(s), "
                       f"{len(frontier['verdicts'])} verdict(s))")
    except InvalidParameterError as exc:
        _fail(str(exc))


__all__ = ["FRONTIER_FORMATS", "frontier_cmd", "frontier_of"]
