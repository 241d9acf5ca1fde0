"""``fedaudit record``: simulate a built-in audit's federated run and write what its server
saw as a recorded-updates directory (docs/recorded-updates.md), for ``fedaudit audit
--observed DIR``; the logic is :func:`audit.api.record_observed`.

The run is the one ``fedaudit audit`` would simulate: the settings of ``--config FILE`` (the
same TOML or YAML keys) with the options given here over them; its ``out``, ``device`` and
``threads`` keys do not apply."""

from __future__ import annotations

import click

from audit.cli.common import _fail, _int
from audit.core.config import RUN_KEYS, AuditConfig, load_config_file, parse_pairs
from audit.core.errors import InvalidParameterError


@click.command("record")
@click.option("--out", required=True, metavar="DIR", help="The recorded-updates directory to write (new or empty).")
@click.option("--config", "config_file", default=None, metavar="FILE", help="TOML or YAML audit settings.")
@click.option("--defense", default=None, help="Defense name (default: the config's, else fedsgd).")
@click.option("--dataset", default=None, help="Dataset name (default: the config's, else natural-32).")
@click.option("--model", default=None, help="Model name or file.py:build (default: the config's, else convnet).")
@click.option("--num-targets", default=None, help="Clients (default: the config's, else 8).")
@click.option("--batch-size", default=None, help="Examples per client (default: the config's, else 1).")
@click.option("--seed", default=None, help="Seed of the simulation (default: the config's, else 0).")
@click.option("--local-training", multiple=True, metavar="K=V", help="The clients' local training, repeatable.")
@click.option("--labels/--no-labels", default=False, show_default=True,
              help="Record the clients' labels (the threat model hbc-server-labels then applies).")
@click.option("--truth/--no-truth", default=True, show_default=True,
              help="Write the clients' data to truth/ (a red-team recording).")
@click.option("--device", default="cpu", show_default=True, help="auto | cpu | cuda")
def record_cmd(out: str, config_file: str | None, labels: bool, truth: bool, device: str,
               local_training: tuple[str, ...], **options: str | None) -> None:
    """Simulate a federated run and write what its server saw (recorded updates)."""
    try:
        settings = load_config_file(config_file) if config_file else {}
        for key in RUN_KEYS:
            settings.pop(key, None)
        for key, value in options.items():
            if value is not None:
                settings[key] = _int(key, value) if key in ("num_targets", "batch_size", "seed") else value
        pairs = parse_pairs(local_training, "--local-training")
        settings["local_training"] = {**settings.get("local_training", {}), **pairs}
        from audit.api import record_observed

        path = record_observed(AuditConfig(**settings), out=out, labels=labels, truth=truth, device=device)
        click.echo(f"wrote {path}")
    except InvalidParameterError as exc:
        _fail(str(exc))
