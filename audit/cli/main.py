"""The ``fedaudit`` command line (click).

Every bad input — unknown names, out-of-range values, missing or corrupt files, unknown
config keys — ends with exit code 2 and one line ``Error: ...`` naming the bad value;
results are written only at the end, atomically.

This module holds the click group and the console entry point; each command lives in its
own ``*_command`` module beside it, and the shared helpers in ``common``.
"""

from __future__ import annotations

import sys

import click

from audit.cli.audit_command import audit
from audit.cli.check_command import check_cmd
from audit.cli.common import _fail
from audit.cli.demo_command import demo
from audit.cli.epsilon_command import epsilon
from audit.cli.frontier_command import frontier_cmd
from audit.cli.ledger_command import ledger_cmd
from audit.cli.list_command import list_cmd
from audit.cli.mia_command import mia_cmd
from audit.cli.opacus_command import opacus_cmd
from audit.cli.record_command import record_cmd
from audit.cli.report_command import report_cmd
from audit.cli.sweep_command import sweep_cmd
from audit.cli.validate_command import validate_cmd
from audit.core.errors import InvalidParameterError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """fedaudit: attack federated-learning privacy defenses and report how much they protect."""


for _command in (list_cmd, audit, demo, epsilon, opacus_cmd, sweep_cmd, report_cmd, check_cmd, validate_cmd):
    cli.add_command(_command)
cli.add_command(mia_cmd)
cli.add_command(record_cmd)
cli.add_command(ledger_cmd)
cli.add_command(frontier_cmd)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for usage errors too."""
    try:
        code = cli.main(args=argv, prog_name="fedaudit", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        _fail(exc.format_message().replace("\n", " "))
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InvalidParameterError as exc:
        _fail(str(exc))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
