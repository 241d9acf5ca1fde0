"""``fedaudit list``: the registered defenses, attacks, datasets, models and threat models."""

from __future__ import annotations

import click

from audit.core.attack import ATTACKS
from audit.core.defense import DEFENSES
from audit.core.threat_model import THREAT_MODELS
from audit.data.registry import DATASETS
from audit.models.registry import MODELS


@click.command("list")
def list_cmd() -> None:
    """List defenses, attacks, datasets, models and threat models, one line each."""
    for title, registry in (
        ("defenses", DEFENSES),
        ("attacks", ATTACKS),
        ("datasets", DATASETS),
        ("models", MODELS),
        ("threat models", THREAT_MODELS),
    ):
        click.echo(f"{title}:")
        for entry in registry:
            click.echo(f"  {entry.name:<22} {entry.summary}")
