"""Privacy accounting through dp_accounting (Google) — no hand-written RDP/PLD maths.

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

import dp_accounting
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from audit.errors import InvalidParameterError
from audit.validation import check_interval, check_options, check_positive

ACCOUNTANTS = ("pld", "rdp")


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


def _make_accountant(name: str, neighbouring: Neighbouring, noise_multiplier: float = 1.0):
    name = check_options("accountant", "the accountant", name, ACCOUNTANTS)
    if name == "pld":
        rel = (
            dp_accounting.NeighboringRelation.REPLACE_ONE
            if neighbouring is Neighbouring.REPLACE
            else dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
        )
        # The privacy-loss range grows like 1/z^2: widen the discretisation interval for
        # small z so memory stays bounded. The PLD estimate stays pessimistic (an upper
        # bound on epsilon), only less tight, and epsilon is large there anyway.
        interval = 1e-4 * max(1.0, (0.5 / noise_multiplier) ** 2)
        return PLDAccountant(neighboring_relation=rel, value_discretization_interval=interval)
    if neighbouring is Neighbouring.REPLACE:
        # dp_accounting's RdpAccountant returns the add-or-remove epsilon for an unsampled
        # Gaussian under REPLACE_ONE (checked with dp_accounting 0.6), which would
        # under-state the claim by the factor-two sensitivity; refuse rather than mislead.
        raise InvalidParameterError(
            "The 'accountant' parameter must be 'pld' for replace-one (local DP) claims. "
            "Got 'rdp' instead."
        )
    return RdpAccountant()


def accountant_label(name: str) -> str:
    """Human-readable name of the accountant, with the library version."""
    lib = f"dp_accounting {getattr(dp_accounting, '__version__', '')}".strip()
    return {"pld": f"{lib} PLDAccountant", "rdp": f"{lib} RdpAccountant"}[name]


def epsilon(spec: GaussianEventSpec, *, delta: float, accountant: str = "pld") -> float:
    """Epsilon of ``spec`` at ``delta`` from the chosen accountant."""
    check_interval("delta", "epsilon", delta, low=0, high=1, closed="neither")
    check_positive("noise_multiplier", "epsilon", spec.noise_multiplier)
    acc = _make_accountant(accountant, spec.neighbouring, spec.noise_multiplier)
    acc.compose(spec.event())
    return float(acc.get_epsilon(delta))


def calibrate_noise_multiplier(
    spec: GaussianEventSpec, *, target_epsilon: float, delta: float, accountant: str = "pld"
) -> float:
    """Smallest noise multiplier whose epsilon at ``delta`` is at most ``target_epsilon``.

    Uses ``dp_accounting.calibrate_dp_mechanism``; the returned value is on the safe side of
    the bisection tolerance (its epsilon never exceeds the target).
    """
    check_positive("target_epsilon", "calibrate_noise_multiplier", target_epsilon)
    check_interval("delta", "calibrate_noise_multiplier", delta, low=0, high=1, closed="neither")
    _make_accountant(accountant, spec.neighbouring)  # validate early
    low, high = 0.3, 1000.0
    if epsilon(_with_z(spec, high), delta=delta, accountant=accountant) > target_epsilon:
        raise InvalidParameterError(
            f"The 'target_epsilon' parameter is unreachable: even noise multiplier {high:g} "
            f"gives a larger epsilon. Got {target_epsilon!r} instead."
        )
    if epsilon(_with_z(spec, low), delta=delta, accountant=accountant) <= target_epsilon:
        return low
    z = dp_accounting.calibrate_dp_mechanism(
        lambda: _make_accountant(accountant, spec.neighbouring),
        spec.event,
        target_epsilon,
        delta,
        bracket_interval=dp_accounting.ExplicitBracketInterval(low, high),
        tol=1e-4,
    )
    return float(z)


def _with_z(spec: GaussianEventSpec, z: float) -> GaussianEventSpec:
    return GaussianEventSpec(z, spec.compositions, spec.sample_rate, spec.neighbouring)
