"""opacus accountants as fedaudit plug-ins: RDP and PRV (Gopi, Lee, Wutschitz 2021).

opacus accounts the Poisson-subsampled Gaussian mechanism under add-or-remove-one
neighbours only (its history is ``(noise_multiplier, sample_rate, steps)``); replace-one
specs are refused rather than mis-accounted.
"""

from __future__ import annotations

import warnings
from importlib import metadata

from audit.accounting import GaussianEventSpec, Neighbouring
from audit.errors import InvalidParameterError


def _history(spec: GaussianEventSpec, name: str) -> list[tuple[float, float, int]]:
    if spec.neighbouring is Neighbouring.REPLACE:
        raise InvalidParameterError(
            f"The 'accountant' parameter must support replace-one claims; opacus accounts "
            f"add-or-remove only. Got {name!r} instead."
        )
    return [(spec.noise_multiplier, spec.sample_rate, spec.compositions)]


class OpacusRDP:
    """opacus' RDPAccountant (same analysis as dp_accounting's RDP, other orders)."""

    name = "opacus-rdp"
    tolerance = 0.5

    @property
    def label(self) -> str:
        return f"opacus {metadata.version('opacus')} RDPAccountant"

    def epsilon(self, spec: GaussianEventSpec, *, delta: float) -> float:
        from opacus.accountants import RDPAccountant

        acc = RDPAccountant()
        acc.history = _history(spec, self.name)
        return float(acc.get_epsilon(delta))


class OpacusPRV:
    """opacus' PRVAccountant: numerical composition of privacy random variables; its
    ``eps_error`` (default 0.01) is the stated tolerance."""

    name = "opacus-prv"
    tolerance = 0.02

    @property
    def label(self) -> str:
        return f"opacus {metadata.version('opacus')} PRVAccountant"

    def epsilon(self, spec: GaussianEventSpec, *, delta: float) -> float:
        from opacus.accountants import PRVAccountant

        acc = PRVAccountant()
        acc.history = _history(spec, self.name)
        with warnings.catch_warnings():  # log(0) warnings inside opacus at sample_rate 1
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(acc.get_epsilon(delta, eps_error=0.01))
