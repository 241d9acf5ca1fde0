"""Privacy accounting through libraries — dp_accounting (Google) and opacus — as plug-ins;
no hand-written RDP/PLD maths.

Two events cover the defenses of the foundation:

* the local Gaussian mechanism applied to one client's clipped update in every round it
  takes part in (``rounds`` self-compositions of ``GaussianDpEvent``), and
* central DP-FedAvg (McMahan et al. 2018): the server noises the sum of clipped updates of
  a Poisson sample of clients, ``rounds`` compositions of
  ``PoissonSampledDpEvent(q, GaussianDpEvent(z))``.

The neighbouring relation is passed to the accountant (``REPLACE_ONE`` for local DP where
the server sees every release, ``ADD_OR_REMOVE_ONE`` for central DP), so the factor two of
replace-one sensitivity is the library's, not ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import functools
import importlib
import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from audit.core.errors import InvalidParameterError
from audit.core.registry import Registry
from audit.core.validation import check_interval, check_positive

if TYPE_CHECKING:  # imported lazily: dp_accounting pulls in scipy.signal (~0.8 s)
    import dp_accounting


class Neighbouring(str, Enum):
    """Neighbouring relation of the unit of privacy."""

    ADD_OR_REMOVE = "add-or-remove-one"
    REPLACE = "replace-one"


@dataclass(frozen=True)
class GaussianEventSpec:
    """A (possibly Poisson-subsampled) Gaussian mechanism composed ``compositions`` times."""

    noise_multiplier: float
    compositions: int
    sample_rate: float = 1.0
    neighbouring: Neighbouring = Neighbouring.ADD_OR_REMOVE

    def event(self, noise_multiplier: float | None = None) -> dp_accounting.DpEvent:
        """The dp_accounting event (with ``noise_multiplier`` overriding the spec's)."""
        import dp_accounting

        z = self.noise_multiplier if noise_multiplier is None else noise_multiplier
        single: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(z)
        if self.sample_rate < 1.0:
            single = dp_accounting.PoissonSampledDpEvent(self.sample_rate, single)
        return dp_accounting.SelfComposedDpEvent(single, self.compositions)

    def describe(self) -> str:
        """One-line description for reports."""
        base = f"Gaussian(noise multiplier {self.noise_multiplier:.6g})"
        if self.sample_rate < 1.0:
            base = f"Poisson-sampled(q={self.sample_rate:.6g}) {base}"
        return f"{base} composed {self.compositions}x, {self.neighbouring.value}"

    @property
    def adjacency(self) -> str:
        """The neighbouring relation in the ledger's and the lint's words (``add-remove`` or
        ``replace-one``; :data:`audit.core.claims.ADJACENCIES`)."""
        return "add-remove" if self.neighbouring is Neighbouring.ADD_OR_REMOVE else "replace-one"

    def assumptions(self, unit: str = "unit") -> tuple[str, ...]:
        """What accounting this spec assumes of the run, one phrase each (for the claim's
        :attr:`~audit.core.claims.PrivacyClaim.assumptions`); ``unit`` names who is sampled."""
        sampling = (f"Poisson sampling: each {unit} independently in a step with probability "
                    f"{self.sample_rate:.6g}" if self.sample_rate < 1.0
                    else f"no amplification by sampling: every {unit} counted in every step")
        return (sampling, f"{self.compositions} Gaussian release(s) composed",
                f"noise multiplier {self.noise_multiplier:.6g} times the L2 sensitivity "
                f"({self.adjacency})")


class Accountant(Protocol):
    """An accountant plug-in: epsilon of a Gaussian event spec at delta.

    Implementations wrap a library (dp_accounting, opacus) and raise
    :class:`InvalidParameterError` for a spec they cannot account faithfully.
    """

    name: str
    label: str
    #: relative tolerance the backend states for its epsilon (used by cross-checks)
    tolerance: float

    def epsilon(self, spec: GaussianEventSpec, *, delta: float) -> float: ...


ACCOUNTANTS: Registry[Accountant] = Registry("accountant")


def _lazy(module: str, name: str) -> Callable[..., Accountant]:
    """A factory that imports ``module`` on first use (the libraries take ~1 s to import)."""

    def factory(**params: object) -> Accountant:
        return getattr(importlib.import_module(module), name)(**params)

    return factory


def _register_backends() -> None:
    for name, module, cls, summary in (
        ("pld", "audit.privacy.accounting.dp_accounting_plugin", "DpAccountingPLD",
         "dp_accounting privacy-loss distributions (tight)"),
        ("rdp", "audit.privacy.accounting.dp_accounting_plugin", "DpAccountingRDP",
         "dp_accounting Renyi DP (an upper bound)"),
        ("opacus-rdp", "audit.privacy.accounting.opacus_plugin", "OpacusRDP", "opacus Renyi DP accountant"),
        ("opacus-prv", "audit.privacy.accounting.opacus_plugin", "OpacusPRV",
         "opacus privacy random variables (Gopi et al. 2021)"),
    ):
        ACCOUNTANTS.register(name, _lazy(module, cls), summary=summary)


def accountant_label(name: str) -> str:
    """Human-readable name of the accountant, with the library version."""
    return ACCOUNTANTS.create(name).label


def epsilon(spec: GaussianEventSpec, *, delta: float, accountant: str = "pld") -> float:
    """Epsilon of ``spec`` at ``delta`` from the chosen accountant."""
    check_interval("delta", "epsilon", delta, low=0, high=1, closed="neither")
    check_positive("noise_multiplier", "epsilon", spec.noise_multiplier)
    check_interval("sample_rate", "epsilon", spec.sample_rate, low=0, high=1, closed="right")
    check_interval("compositions", "epsilon", spec.compositions, kind=int, low=1)
    return float(ACCOUNTANTS.create(accountant).epsilon(spec, delta=delta))


def composed_epsilon(specs: Sequence[GaussianEventSpec], *, delta: float) -> float:
    """Epsilon at ``delta`` of several Gaussian specs composed (dp_accounting PLD), e.g. a
    layer-wise mechanism: one spec per layer, each over its rounds."""
    check_interval("delta", "composed_epsilon", delta, low=0, high=1, closed="neither")
    if not specs:
        raise InvalidParameterError("The 'specs' parameter must not be empty. Got [] instead.")
    for spec in specs:
        check_positive("noise_multiplier", "composed_epsilon", spec.noise_multiplier)
    return float(ACCOUNTANTS.create("pld").epsilon_composed(list(specs), delta=delta))


def calibrate_noise_multiplier(
    spec: GaussianEventSpec, *, target_epsilon: float, delta: float, accountant: str = "pld"
) -> float:
    """Smallest noise multiplier whose epsilon at ``delta`` is at most ``target_epsilon``.

    Bisection in log-space over the accountant's own epsilon (monotone in z); the returned
    value is the upper end of the final bracket, so its epsilon never exceeds the target.
    The bracket is [0.01, 1000]: a target above the epsilon of z = 0.01 (thousands, for
    one release) gets z = 0.01 and the smaller epsilon that goes with it.
    Results are memoised per process (a PLD bisection takes seconds and every shadow model
    of a membership audit asks for the same one).
    """
    check_positive("target_epsilon", "calibrate_noise_multiplier", target_epsilon)
    check_interval("delta", "calibrate_noise_multiplier", delta, low=0, high=1, closed="neither")
    return _calibrated(spec, float(target_epsilon), float(delta), accountant)


@functools.lru_cache(maxsize=256)
def _calibrated(spec: GaussianEventSpec, target_epsilon: float, delta: float,
                accountant: str) -> float:
    low, high = 0.01, 1000.0

    def eps(z: float) -> float:
        # opacus warns when the best Renyi order is at the end of its grid, which the
        # bisection's extreme probes (z = 0.01, 1000) hit; the final claim still warns
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the")
            return epsilon(_with_z(spec, z), delta=delta, accountant=accountant)

    if eps(high) > target_epsilon:
        raise InvalidParameterError(
            f"The 'target_epsilon' parameter is unreachable: even noise multiplier {high:g} "
            f"gives a larger epsilon. Got {target_epsilon!r} instead."
        )
    if eps(low) <= target_epsilon:
        return low
    while high / low > 1 + 1e-4:
        mid = math.sqrt(low * high)
        if eps(mid) <= target_epsilon:
            high = mid
        else:
            low = mid
    return high


def _with_z(spec: GaussianEventSpec, z: float) -> GaussianEventSpec:
    return GaussianEventSpec(z, spec.compositions, spec.sample_rate, spec.neighbouring)


_register_backends()
