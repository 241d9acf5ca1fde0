"""``fedaudit demo``: a fixed small audit on embedded data, written as one report."""

from __future__ import annotations

import time

import click

from audit.cli.common import _fail, _finish, _int, _lpips, _progress
from audit.core.device import resolve_device, set_threads
from audit.core.errors import InvalidParameterError


@click.command()
@click.option("--out", required=True, help="Output directory for report.json and report.html.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda")
@click.option("--threads", type=str, default="1", show_default=True)
@click.option("--progress/--no-progress", default=None)
def demo(out: str, device: str, threads: str, progress: bool | None) -> None:
    """A fixed small audit on embedded data: undefended FedSGD vs DP-FedAvg at two noise
    levels, attacked by Inverting Gradients and iDLG; FedAvg vs DP-FedAvg (epsilon 1)
    attacked by LOSS and LiRA membership inference."""
    from audit.demo import run_demo

    start = time.perf_counter()
    try:
        dev = resolve_device(device)
        n_threads = set_threads(_int("threads", threads))
        scorer, notes = _lpips(True, dev)
        findings = run_demo(device=dev, lpips_scorer=scorer, progress=_progress(progress))
        _finish(
            findings, title="fedaudit demo: gradient inversion and membership inference against FedSGD/FedAvg and DP-FedAvg",
            command=f"fedaudit demo --threads {n_threads} --out OUT", seed=0, device=dev,
            threads=n_threads, notes=notes, start=start, out=out,
        )
    except InvalidParameterError as exc:
        _fail(str(exc))
