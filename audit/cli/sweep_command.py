"""``fedaudit sweep``: a grid of audits from a spec file, run resumably, or its status."""

from __future__ import annotations

import sys

import click

from audit.cli.common import _fail, _int, _progress
from audit.core.errors import InvalidParameterError


@click.command("sweep")
@click.argument("spec")
@click.option("--out", required=True, help="Sweep directory: runs/<id>/, failed/<id>.txt, compliance.{json,html}.")
@click.option("--backend", default="ray", show_default=True, help="ray (local instance or --ray-address) | serial")
@click.option("--ray-address", default=None, help="Join this Ray cluster instead of starting a local one.")
@click.option("--workers", type=str, default=None, help="Runs at once (default: CPU count).")
@click.option("--status", "status_only", is_flag=True, help="List done and pending runs; run nothing.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def sweep_cmd(spec: str, out: str, backend: str, ray_address: str | None, workers: str | None,
              status_only: bool, progress: bool | None) -> None:
    """Run a grid of audits from SPEC (TOML or YAML), resumably, and write one compliance report."""
    from audit.sweep import load_spec, run_sweep, sweep_status
    from audit.core.validation import check_options

    try:
        check_options("backend", "fedaudit sweep", backend, ["ray", "serial"])
        parsed = load_spec(spec)
        if status_only:
            st = sweep_status(parsed, out)
            for rid in st.done:
                click.echo(f"done     {rid}")
            for rid in st.pending:
                click.echo(f"{'failed' if rid in st.failed else 'pending':<8} {rid}"
                           + (f"  ({st.failed[rid]})" if rid in st.failed else ""))
            click.echo(f"{len(st.done)} of {st.total} run(s) done")
            return
        result = run_sweep(parsed, out, backend=backend, ray_address=ray_address,
                           workers=None if workers is None else _int("workers", workers),
                           progress=_progress(progress))
    except InvalidParameterError as exc:
        _fail(str(exc))
    click.echo(result.summary())
    for rid, message in result.failed.items():
        click.echo(f"failed: {rid}: {message} (see {out}/failed/{rid}.txt)", err=True)
    sys.exit(1 if result.failed else 0)
