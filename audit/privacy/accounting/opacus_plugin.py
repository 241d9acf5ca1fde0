"""opacus accountants as fedaudit plug-ins: RDP and PRV (Gopi, Lee, Wutschitz 2021).

opacus accounts the Poisson-subsampled Gaussian mechanism under add-or-remove-one
neighbours only (its history is ``(noise_multiplier, sample_rate, steps)``); replace-one
specs are refused rather than mis-accounted.
"""

from __future__ import annotations

import warnings
from importlib import metadata

from audit.privacy.accounting.accountants import GaussianEventSpec, Neighbouring
from audit.core.errors import InvalidParameterError


def _history(spec: GaussianEventSpec, name: str) -> list[tuple[float, float, int]]:
    if spec.neighbouring is Neighbouring.REPLACE:
        raise InvalidParameterError(
            f"The 'accountant' parameter must support replace-one claims; opacus accounts "
            f"add-or-remove only. Got {name!r} instead."
        )
    return [(spec.noise_multiplier, spec.sample_rate, spec.compositions)]


class _OpacusAccountant:
    """Shared plumbing: build the opacus accountant, load the history, ask for epsilon."""

    name: str
    opacus_class: str
    tolerance: float

    @property
    def label(self) -> str:
        return f"opacus {metadata.version('opacus')} {self.opacus_class}"

    def epsilon(self, spec: GaussianEventSpec, *, delta: float) -> float:
        from opacus import accountants

        acc = getattr(accountants, self.opacus_class)()
        acc.history = _history(spec, self.name)
        with warnings.catch_warnings():  # log(0) warnings inside opacus at sample_rate 1
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(acc.get_epsilon(delta, **self.options))

    options: dict = {}


class OpacusRDP(_OpacusAccountant):
    """opacus' RDPAccountant (the same analysis as dp_accounting's RDP, other orders)."""

    name = "opacus-rdp"
    opacus_class = "RDPAccountant"
    tolerance = 0.5


class OpacusPRV(_OpacusAccountant):
    """opacus' PRVAccountant: numerical composition of privacy random variables; its
    ``eps_error`` of 0.01 is the stated tolerance."""

    name = "opacus-prv"
    opacus_class = "PRVAccountant"
    tolerance = 0.02
    options = {"eps_error": 0.01}
