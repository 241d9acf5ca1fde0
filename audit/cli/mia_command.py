"""``fedaudit mia``: the score-level membership audit of a scores file (what a deployment
recorded: the target's logits, losses or confidences, optionally reference models'), with
no model and no training; the logic is :mod:`audit.membership.score_audit`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from audit.cli.common import _command_of, _fail, _finish, _int
from audit.core.errors import InvalidParameterError


@click.command("mia")
@click.option("--scores", "scores_file", required=True, metavar="FILE",
              help="Scores file: .csv, .npz or .parquet (format: docs/membership.md).")
@click.option("--out", required=True, metavar="DIR", help="Output directory for report.json and report.html.")
@click.option("--attack", "attacks", multiple=True, metavar="NAME",
              help="loss | lira | lira-offline | rmia, repeatable (default: all the file's columns allow).")
@click.option("--seed", type=str, default="0", show_default=True, help="Seed of the AUC's bootstrap interval.")
@click.pass_context
def mia_cmd(ctx: click.Context, scores_file: str, out: str, attacks: tuple[str, ...], seed: str) -> None:
    """Membership inference from recorded scores (LOSS, LiRA, RMIA) and write a report."""
    start = time.perf_counter()
    try:
        seed_n = _int("seed", seed)
        if Path(out).exists() and not Path(out).is_dir():
            raise InvalidParameterError(
                f"The 'out' parameter of fedaudit mia must be a directory. Got {out!r} (a file) instead.")
        import torch

        from audit.membership.score_audit import NOTE, audit_scores

        findings = audit_scores(scores_file, attacks=list(attacks) or None, seed=seed_n)
        _finish(findings, title=f"fedaudit: score-level membership audit of {Path(scores_file).name}",
                command=_command_of(ctx, "mia"), seed=seed_n, device=torch.device("cpu"),
                threads=torch.get_num_threads(), notes=[NOTE], start=start, out=out)
    except InvalidParameterError as exc:
        _fail(str(exc))
