"""The epsilon Opacus claims for a run: its own accountant, or the number you publish.

The claim of a finished run (:func:`opacus_claim`) is ``privacy_engine.get_epsilon(delta)``
after the run (Opacus's accountant; the label is ``opacus-<mechanism>``, e.g.
``opacus-rdp`` for ``PrivacyEngine(accountant="rdp")``, ``opacus-prv`` for Opacus 1.6's
default), unit "one training example (sample-level, add-or-remove)", central trust model
(it holds against anyone seeing the models or the privatized gradients, not against
whoever runs the training). ``OpacusRun.accountant`` re-accounts the engine's history with
another Opacus accountant (:data:`ACCOUNTANTS`); ``claimed_epsilon`` replaces it by the
number you publish (then Opacus's own is kept as an alternative claim, with its own
verdict). :func:`opacus_epsilon` is what an Opacus accountant reports for a given history.
"""

from __future__ import annotations

import warnings
from typing import Any

from audit.core.claims import PrivacyClaim, TrustModel
from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_options

UNIT = "one training example (sample-level, add-or-remove)"
ACCOUNTANTS = ("rdp", "prv", "gdp")


def _quiet_accountant() -> None:
    """Silence opacus' log(0) warnings at sample rate 1 and its note that the best RDP
    order is the largest one (the RDP epsilon is then loose, i.e. the claim larger)."""
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")


def opacus_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                   accountant: str = "rdp") -> float:
    """Epsilon of ``steps`` Poisson-sampled Gaussian steps from an Opacus accountant (what
    ``PrivacyEngine.get_epsilon`` reports for that history)."""
    from opacus.accountants import create_accountant

    owner = "opacus_epsilon"
    sigma = check_interval("noise_multiplier", owner, noise_multiplier, low=0, closed="neither")
    q = check_interval("sample_rate", owner, sample_rate, low=0, high=1, closed="right")
    steps = check_interval("steps", owner, steps, kind=int, low=1)
    delta = check_interval("delta", owner, delta, low=0, high=1, closed="neither")
    acc = create_accountant(check_options("accountant", owner, accountant, ACCOUNTANTS))
    acc.history = [(sigma, q, steps)]
    with warnings.catch_warnings():
        _quiet_accountant()
        return float(acc.get_epsilon(delta))


def engine_history(engine: Any) -> list[tuple[float, float, int]]:
    """The (noise multiplier, sample rate, steps) history of ``engine``'s accountant."""
    return [(float(s), float(q), int(n)) for s, q, n in engine.accountant.history]


def opacus_claim(engine: Any, delta: float, *, accountant: str | None = None,
                 claimed_epsilon: float | None = None) -> PrivacyClaim:
    """The claim of a finished Opacus run: ``engine.get_epsilon(delta)`` (or the history
    re-accounted with ``accountant``), or ``claimed_epsilon`` with the engine's as an
    alternative claim."""
    from opacus.accountants import create_accountant

    history = engine_history(engine)
    if not history:
        raise InvalidParameterError(
            "The 'make' parameter of audit_opacus must return the PrivacyEngine that trained: its "
            "accountant recorded no step. Got an engine with an empty history instead.")
    name = accountant or engine.accountant.mechanism()
    with warnings.catch_warnings():
        _quiet_accountant()
        if accountant is None:
            eps = float(engine.get_epsilon(delta))
        else:
            acc = create_accountant(accountant)
            acc.history = list(engine.accountant.history)
            eps = float(acc.get_epsilon(delta))
    steps = sum(n for _, _, n in history)
    sigmas = sorted({s for s, _, _ in history})
    rates = sorted({q for _, q, _ in history})
    desc = (f"noise multiplier {', '.join(f'{s:g}' for s in sigmas)}, sample rate "
            f"{', '.join(f'{q:.4g}' for q in rates)}, {steps} steps")
    own = PrivacyClaim(
        has_dp=True,
        statement=(f"Opacus PrivacyEngine, {name} accountant: ({eps:.4g}, {delta:g})-DP for one "
                   f"training example (add-or-remove), {desc}; holds against anyone who sees the "
                   "model or every privatized gradient, not against whoever runs the training."),
        epsilon=eps, delta=float(delta), unit=UNIT, trust_model=TrustModel.CENTRAL,
        compositions=steps, accountant=f"opacus-{name}",
        mechanism="DP-SGD: per-sample clipping, Gaussian noise, Poisson sampling (Opacus DPOptimizer)",
        label="Opacus accountant, as run", unit_level="record", adjacency="add-remove",
        assumptions=(f"Poisson sampling: each training example in a step with probability "
                     f"{', '.join(f'{q:.4g}' for q in rates)}",
                     f"{steps} steps composed (the engine's accountant history)",
                     f"noise multiplier {', '.join(f'{s:g}' for s in sigmas)} times max_grad_norm "
                     "on the sum of per-example clipped gradients"))
    if claimed_epsilon is None:
        return own
    return PrivacyClaim(
        has_dp=True,
        statement=(f"reported by the user: ({claimed_epsilon:.4g}, {delta:g})-DP for one training "
                   f"example; the run's own Opacus accounting ({desc}) gives {eps:.4g}."),
        epsilon=float(claimed_epsilon), delta=float(delta), unit=UNIT, trust_model=TrustModel.CENTRAL,
        compositions=steps, accountant="user-reported", mechanism=own.mechanism,
        label="reported", alternatives=(own,), unit_level="record", adjacency="add-remove",
        assumptions=own.assumptions)


__all__ = ["ACCOUNTANTS", "UNIT", "engine_history", "opacus_claim", "opacus_epsilon"]
