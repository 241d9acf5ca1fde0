"""Helpers the ``fedaudit`` commands share: the one-line error exit, integer parsing,
LPIPS and progress defaults, writing the final report, and the reproducing command line."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click

from audit.core.device import describe_device
from audit.core.environment import environment_info
from audit.core.errors import InvalidParameterError
from audit.metrics.lpips_metric import LpipsScorer


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _lpips(enabled: bool, device) -> tuple[LpipsScorer | None, list[str]]:
    if not enabled:
        return None, ["LPIPS not computed: disabled with --no-lpips."]
    scorer = LpipsScorer(device=device)
    return scorer, ([] if scorer.available else [scorer.reason])


def _progress(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def _finish(findings, *, title, command, seed, device, threads, notes, start, out) -> None:
    from reports.assembly import assemble_report, write_report

    report = assemble_report(
        findings,
        title=title,
        command=command,
        seed=seed,
        environment=environment_info(device=describe_device(device), threads=threads),
        notes=notes,
        runtime_s=time.perf_counter() - start,
    )
    json_path, html_path = write_report(out, report)
    click.echo(f"wrote {json_path} and {html_path}")


def _int(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise InvalidParameterError(
            f"The {name!r} parameter of fedaudit must be an int. Got {value!r} instead."
        ) from None


def _float(name: str, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        raise InvalidParameterError(
            f"The {name!r} parameter of fedaudit must be a number. Got {value!r} instead."
        ) from None


def _command_of(ctx: click.Context, name: str) -> str:
    """The command line that reproduces this invocation (every option, defaults included)."""
    words = ["fedaudit", name]
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    for key, value in ctx.params.items():
        flag = flags.get(key, "--" + key.replace("_", "-"))
        for v in (value if isinstance(value, (tuple, list)) else [value]):
            if v is not None:
                words += [flag, str(v)]
    return shlex.join(words)


def _compliance(run_dirs: tuple[str, ...], policy_file: str | None, command: str) -> dict:
    """The compliance report of audit runs against a policy (``fedaudit report`` and ``check``)."""
    from audit.compliance.policy import load_policy
    from audit.compliance.compliance_report import build_compliance, load_run

    if not run_dirs:
        raise InvalidParameterError("fedaudit needs at least one RUN_DIR (an audit's --out directory). Got none instead.")
    policy = load_policy(policy_file)
    runs = [load_run(d) for d in run_dirs]
    return build_compliance(runs, policy=policy, policy_source=policy_file or "default policy (audit/compliance/policies/default.toml)",
                            command=command)


def report_paths(arg: str, command: str) -> list[Path]:
    """The ``report.json`` files that ``arg`` names for ``fedaudit COMMAND RUN_DIRS...``: the
    file itself, a run directory's report, or every report below a directory of runs."""
    path = Path(arg)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InvalidParameterError(
            f"The 'RUN_DIRS' argument of fedaudit {command} must name run directories or report.json "
            f"files. Got {arg!r} (no such file or directory) instead.")
    if (path / "report.json").is_file():
        return [path / "report.json"]
    found = sorted(path.rglob("report.json"))
    if not found:
        raise InvalidParameterError(
            f"The 'RUN_DIRS' argument of fedaudit {command} must name run directories holding the "
            f"report.json of an audit. Got {arg!r} (no report.json in it or below it) instead.")
    return found
