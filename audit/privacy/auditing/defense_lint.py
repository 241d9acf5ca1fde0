"""The accounting lint of a fedaudit defense's claim, as configured and as run.

:func:`defense_facts` gathers a :class:`~audit.privacy.lint.RunFacts` from three sources,
later ones overriding earlier ones:

1. **the claim** (:class:`~audit.core.claims.PrivacyClaim`): its accountant, delta, unit
   level (``unit_claimed``) and adjacency (``adjacency_claimed``);
2. **the run**: the population (``n_clients`` of the schedule; ``n_records`` = the clients'
   examples, when known) and, for a client-level claim, the rounds that ran
   (``steps_run``: the transcript's rounds, else the schedule's) beside the claim's
   ``compositions`` (``steps_accounted``);
3. **the defense** (:meth:`audit.core.defense.Defense.accounting_facts`): what its
   accountant assumes and what its mechanism does (sampling, steps, unit released, noise,
   order of operations), for a built-in defense or yours.

:func:`defense_lint` runs every rule on them (:func:`audit.privacy.lint.run_lint`, skipped
rules reported as ``info``) and returns the report's ``privacy_audit.lint`` entries.

Project choices: a client-level claim's ``compositions`` are read as rounds (a round is one
release per client) unless the defense's facts say otherwise; a record-level claim's are
left to the defense (they may count local DP-SGD steps); the simulation's noise generator is
a seeded ``torch.Generator``, not the deployed one, so ``secure_rng`` stays unknown unless the
defense states it.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from audit.core.claims import PrivacyClaim
from audit.core.defense import Defense, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.privacy.lint import RunFacts, run_lint

_FIELDS = tuple(f.name for f in fields(RunFacts))


def defense_facts(defense: Defense, schedule: FederationSchedule, claim: PrivacyClaim, *,
                  rounds_run: int | None = None) -> RunFacts:
    """The lint's facts of ``defense`` claiming ``claim`` over ``schedule``; ``rounds_run``
    is the rounds that actually ran (default: the schedule's)."""
    facts: dict[str, Any] = {
        "framework": "fedaudit", "accountant": claim.accountant, "delta": claim.delta,
        "n_clients": schedule.num_clients,
        "n_records": sum(schedule.examples_per_client) if schedule.examples_per_client else None,
        "unit_claimed": claim.unit_level, "adjacency_claimed": claim.adjacency,
    }
    if claim.unit_level == "client" and claim.compositions is not None:
        facts["steps_accounted"] = claim.compositions
        facts["steps_run"] = schedule.rounds if rounds_run is None else rounds_run
    own = defense.accounting_facts(schedule)
    if not isinstance(own, dict):
        raise InvalidParameterError(
            f"The accounting_facts() of defense {defense.name!r} must return a dict of RunFacts "
            f"fields. Got {type(own).__name__} instead.")
    unknown = sorted(set(own) - set(_FIELDS))
    if unknown:
        raise InvalidParameterError(
            f"The accounting_facts() of defense {defense.name!r} must use RunFacts field names "
            f"({', '.join(_FIELDS)}). Got {', '.join(map(repr, unknown))} instead.")
    facts.update(own)
    return RunFacts(**facts)


def defense_lint(defense: Defense, schedule: FederationSchedule, claim: PrivacyClaim, *,
                 rounds_run: int | None = None) -> list[dict]:
    """The accounting lint of ``claim`` (:func:`defense_facts`), as ``privacy_audit.lint``
    entries (``id``, ``severity``, ``message``, ``fix``); ``[]`` for a claim without DP."""
    if not claim.has_dp:
        return []
    facts = defense_facts(defense, schedule, claim, rounds_run=rounds_run)
    return [f.to_dict() for f in run_lint(facts, report_skipped=True)]


__all__ = ["defense_facts", "defense_lint"]
