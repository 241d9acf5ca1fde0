"""``fedaudit check``: the deployment gate, exit 0 when every policy rule passes, 1 when one fails."""

from __future__ import annotations

import shlex
import sys

import click

from audit.cli.common import _compliance, _fail
from audit.core.errors import InvalidParameterError


@click.command("check")
@click.argument("run_dirs", nargs=-1)
@click.option("--policy", "policy_file", default=None, help="Policy file (TOML or YAML; default: the shipped policy).")
@click.option("--strict/--no-strict", default=False, show_default=True,
              help="Fail on rules the evidence cannot evaluate too.")
def check_cmd(run_dirs: tuple[str, ...], policy_file: str | None, strict: bool) -> None:
    """Gate a deployment: exit 0 when every policy rule passes, 1 when one fails, 2 on bad input."""
    try:
        report = _compliance(run_dirs, policy_file, shlex.join(["fedaudit", "check", *run_dirs]))
    except InvalidParameterError as exc:
        _fail(str(exc))
    rules = report["policy"]["rules"]
    for r in rules:
        click.echo(f"{r['status']:<13} {r['rule']}: {r['why']}")
    failed = [r for r in rules if r["status"] == "FAIL" or (strict and r["status"] == "NOT EVALUATED")]
    click.echo(f"{'FAIL' if failed else 'PASS'}: {len(rules) - len(failed)} of {len(rules)} rule(s) pass"
               + (" (--strict: unevaluated rules fail)" if strict else ""))
    sys.exit(1 if failed else 0)
