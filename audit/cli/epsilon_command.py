"""``fedaudit epsilon``: epsilon of a (Poisson-subsampled) Gaussian mechanism from every accountant."""

from __future__ import annotations

import click

from audit.cli.common import _fail
from audit.core.errors import InvalidParameterError


@click.command()
@click.option("--noise-multiplier", required=True, type=str, help="Gaussian noise std / sensitivity (z).")
@click.option("--sample-rate", default="1.0", show_default=True, type=str, help="Poisson sampling rate q.")
@click.option("--steps", default="1", show_default=True, type=str, help="Compositions (steps or rounds).")
@click.option("--delta", default="1e-5", show_default=True, type=str)
@click.option("--neighbouring", default="add-or-remove-one", show_default=True,
              help="add-or-remove-one | replace-one")
def epsilon(noise_multiplier: str, sample_rate: str, steps: str, delta: str, neighbouring: str) -> None:
    """Print epsilon of a (Poisson-subsampled) Gaussian mechanism from every accountant."""
    from audit.privacy.accounting.accountants import ACCOUNTANTS, GaussianEventSpec, Neighbouring
    from audit.privacy.accounting.accountants import epsilon as account
    from audit.core.validation import check_interval, check_options

    try:
        z = check_interval("noise_multiplier", "fedaudit epsilon", noise_multiplier, low=0, closed="neither")
        q = check_interval("sample_rate", "fedaudit epsilon", sample_rate, low=0, high=1, closed="right")
        n = check_interval("steps", "fedaudit epsilon", steps, kind=int, low=1)
        d = check_interval("delta", "fedaudit epsilon", delta, low=0, high=1, closed="neither")
        rel = Neighbouring(check_options("neighbouring", "fedaudit epsilon", neighbouring,
                                         [r.value for r in Neighbouring]))
        spec = GaussianEventSpec(z, n, q, rel)
        click.echo(f"{spec.describe()}, delta={d:g}")
        for entry in ACCOUNTANTS:
            try:
                value = f"{account(spec, delta=d, accountant=entry.name):.6g}"
            except InvalidParameterError:
                value = "n/a (this accountant does not support replace-one)"
            click.echo(f"  {entry.name:<12} epsilon = {value}")
    except InvalidParameterError as exc:
        _fail(str(exc))
