"""Run the fedaudit CLI in-process and return (exit code, stdout, stderr)."""

import pytest

from audit.cli.main import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err
