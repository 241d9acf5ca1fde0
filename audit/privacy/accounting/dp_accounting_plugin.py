"""dp_accounting (Google) accountants as fedaudit plug-ins: PLD and RDP."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

from dp_accounting import NeighboringRelation
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from audit.privacy.accounting.accountants import GaussianEventSpec, Neighbouring
from audit.core.errors import InvalidParameterError

_VERSION = metadata.version("dp-accounting")


class DpAccountingPLD:
    """Privacy-loss-distribution accounting (Koskela et al.; Doroshenko et al. 2022).

    Pessimistic estimate, so the epsilon is an upper bound up to discretisation. Choice:
    the discretisation interval widens like 1/z^2 for z < 0.5, keeping memory bounded where
    epsilon is large anyway (the estimate stays pessimistic, only less tight).
    """

    name = "pld"
    label = f"dp_accounting {_VERSION} PLDAccountant"
    tolerance = 0.01

    def epsilon(self, spec: GaussianEventSpec, *, delta: float) -> float:
        return self.epsilon_composed([spec], delta=delta)

    def epsilon_composed(self, specs: Sequence[GaussianEventSpec], *, delta: float) -> float:
        """Epsilon of all ``specs`` composed (e.g. one Gaussian per layer, each over its
        rounds); they must share one neighbouring relation."""
        relations = {s.neighbouring for s in specs}
        if len(relations) != 1:
            raise InvalidParameterError(
                "The 'specs' parameter must share one neighbouring relation. Got "
                f"{sorted(r.value for r in relations)!r} instead.")
        relation = (
            NeighboringRelation.REPLACE_ONE
            if relations.pop() is Neighbouring.REPLACE
            else NeighboringRelation.ADD_OR_REMOVE_ONE
        )
        z_min = min(s.noise_multiplier for s in specs)
        interval = 1e-4 * max(1.0, (0.5 / z_min) ** 2)
        acc = PLDAccountant(neighboring_relation=relation, value_discretization_interval=interval)
        for spec in specs:
            acc.compose(spec.event())
        return float(acc.get_epsilon(delta))


class DpAccountingRDP:
    """Renyi-DP accounting (Mironov 2017; Mironov, Talwar, Zhang 2019): an upper bound,
    looser than PLD. Refuses replace-one specs: dp_accounting 0.6's RdpAccountant returns the
    add-or-remove epsilon for an unsampled Gaussian under REPLACE_ONE, which would
    under-state a local-DP claim by the factor-two sensitivity."""

    name = "rdp"
    label = f"dp_accounting {_VERSION} RdpAccountant"
    tolerance = 0.5  # RDP -> (eps, delta) conversion is loose; it only bounds from above

    def epsilon(self, spec: GaussianEventSpec, *, delta: float) -> float:
        if spec.neighbouring is Neighbouring.REPLACE:
            raise InvalidParameterError(
                "The 'accountant' parameter must be 'pld' for replace-one (local DP) claims. "
                "Got 'rdp' instead."
            )
        acc = RdpAccountant()
        acc.compose(spec.event())
        return float(acc.get_epsilon(delta))
