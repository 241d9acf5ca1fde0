"""``fedaudit mia``: the membership audit of a scores file (what a deployment recorded: the
target's logits, losses or confidences, optionally reference models'), with no model and no
training (the logic is :mod:`audit.membership.score_audit`); or, with ``--target-weights``,
of the user's own trained target, with shadow models trained by the user's own training
function (:mod:`audit.cli.target_mia_command`, :mod:`audit.membership.shadow_scores`)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from audit.cli.common import _command_of, _fail, _finish, _int
from audit.cli.target_mia_command import target_mia, target_options, wants_target
from audit.core.errors import InvalidParameterError


@click.command("mia")
@click.option("--scores", "scores_file", default=None, metavar="FILE",
              help="Scores file: .csv, .npz or .parquet (format: docs/membership.md).")
@click.option("--target-weights", default=None, metavar="FILE.safetensors",
              help="Instead of --scores: your trained target (with --model, --dataset, --members, --train).")
@target_options
@click.option("--out", required=True, metavar="DIR",
              help="Output directory for report.json and report.html (and scores.npz with --target-weights).")
@click.option("--attack", "attacks", multiple=True, metavar="NAME",
              help="loss | lira | lira-offline | rmia (--scores only), repeatable (default: all the scores allow).")
@click.option("--groups", "groups_file", default=None, metavar="FILE",
              help="--scores only: user-named groups for 'who is exposed', a .csv (record_id,group) or .json {record_id: group}.")
@click.option("--seed", type=str, default="0", show_default=True,
              help="Seed of the AUC's bootstrap interval (and of the shadow models' halves and training).")
@click.pass_context
def mia_cmd(ctx: click.Context, **opts) -> None:
    """Membership inference from recorded scores, or of your target with your training (LOSS, LiRA, RMIA)."""
    start = time.perf_counter()
    try:
        if wants_target(opts):
            if opts["groups_file"] is not None:
                raise InvalidParameterError(
                    "The '--groups' option of fedaudit mia goes with --scores (the record ids of "
                    f"a scores file). Got --groups {opts['groups_file']!r} with --target-weights instead.")
            return target_mia(opts, start)
        scores_file, out, attacks = opts["scores_file"], opts["out"], opts["attacks"]
        seed_n = _int("seed", opts["seed"])
        if Path(out).exists() and not Path(out).is_dir():
            raise InvalidParameterError(
                f"The 'out' parameter of fedaudit mia must be a directory. Got {out!r} (a file) instead.")
        import torch

        from audit.membership.score_audit import NOTE, audit_scores

        findings = audit_scores(scores_file, attacks=list(attacks) or None, seed=seed_n,
                                groups=opts["groups_file"])
        _finish(findings, title=f"fedaudit: score-level membership audit of {Path(scores_file).name}",
                command=_command_of(ctx, "mia"), seed=seed_n, device=torch.device("cpu"),
                threads=torch.get_num_threads(), notes=[NOTE], start=start, out=out)
    except InvalidParameterError as exc:
        _fail(str(exc))
