"""``fedaudit audit --observed DIR``: the audit of a recorded-updates directory, with no
simulation (:mod:`audit.observed.offline_audit`). The ``audit`` command dispatches here when
``--observed`` is given; only the options that apply to a recording may be set with it
(the attack, its parameters, the threat model, the seed, device, threads, LPIPS, progress
and ``--out``): the recording fixes the model, data, defense and training, so setting any
other option is an error naming it, as is ``--config``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from audit.cli.common import _fail, _finish, _int, _lpips, _progress
from audit.core.config import parse_pairs
from audit.core.device import resolve_device, set_threads
from audit.core.errors import InvalidParameterError

APPLIES = ("observed", "attack", "attack_param", "threat_model", "seed", "device", "threads", "lpips",
           "progress", "out")


def observed_audit(ctx: click.Context, config_file: str | None, opts: dict[str, Any], start: float) -> None:
    """Run the offline audit of ``opts["observed"]`` and write its report to ``--out``."""
    try:
        given = ["config"] if config_file else []
        given += [n for n in opts if n not in APPLIES
                  and ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise InvalidParameterError(
                f"The '--{given[0].replace('_', '-')}' option does not apply to an audit of recorded "
                f"updates (--observed): the recording fixes the model, data, defense and training. "
                f"Got it set instead.")
        out = opts["out"]
        if not out or (Path(out).exists() and not Path(out).is_dir()):
            raise InvalidParameterError(
                f"The 'out' parameter of fedaudit audit must be a directory. Got {out!r} instead.")
        seed = _int("seed", opts["seed"])
        device = resolve_device(opts["device"])
        threads = set_threads(_int("threads", opts["threads"]))
        attack_params = parse_pairs(opts["attack_param"], "--attack-param")
        from audit.observed.offline_audit import observed_command, observed_findings

        scorer, notes = _lpips(opts["lpips"], device)
        findings, more = observed_findings(
            opts["observed"], attack=opts["attack"], attack_params=attack_params,
            threat_model=opts["threat_model"], seed=seed, device=device, lpips_scorer=scorer,
            progress=_progress(opts["progress"]))
        _finish(findings, title=f"fedaudit: {opts['attack']} on recorded updates ({Path(opts['observed']).name})",
                command=observed_command(opts["observed"], attack=opts["attack"], attack_params=attack_params,
                                         threat_model=opts["threat_model"], seed=seed, threads=threads),
                seed=seed, device=device, threads=threads, notes=notes + more, start=start, out=out)
    except InvalidParameterError as exc:
        _fail(str(exc))
