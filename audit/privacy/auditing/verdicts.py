"""The verdict of an empirical epsilon against a claim: PASS, VIOLATION or INCONCLUSIVE.

* VIOLATION: a lower bound (at its confidence) above the claimed epsilon, or an estimate
  more than 10% above it (an estimate has no confidence level).
* INCONCLUSIVE: no violation, but the claimed epsilon is above the audit's **power
  ceiling** -- the most this audit could have certified, a perfectly leaky mechanism's
  bound with the same canaries or trials at the same confidence
  (:func:`audit.privacy.estimators.power.estimate_ceiling`; ``../shared/specs/auditing.md``,
  "Power ceiling"). Such an audit could not have refuted the claim whatever the mechanism
  did: "too weak to say", not "no evidence against the claim".
* PASS otherwise, which is no proof of privacy (:data:`NOT_A_PROOF`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from audit.core.claims import PrivacyClaim
from audit.privacy.estimators import EmpiricalEpsilon
from audit.privacy.estimators.power import INCONCLUSIVE, estimate_ceiling, power_verdict

NOT_A_PROOF = (
    "A low empirical epsilon is not a proof of privacy: it only says this audit found no "
    "stronger evidence of leakage."
)
VERDICTS = ("PASS", "VIOLATION", INCONCLUSIVE)


@dataclass(frozen=True)
class PrivacyVerdict:
    """Claim beside evidence, and the most the evidence could have shown (``ceiling``;
    None for an estimate)."""

    verdict: str  # "PASS" | "VIOLATION" | "INCONCLUSIVE"
    claim: PrivacyClaim
    estimate: EmpiricalEpsilon
    reason: str
    ceiling: float | None = None


def verdict(claim: PrivacyClaim, est: EmpiricalEpsilon) -> PrivacyVerdict:
    """PASS / VIOLATION / INCONCLUSIVE of ``claim`` given ``est``."""
    eps = float(claim.epsilon)
    ceiling = estimate_ceiling(est)
    if est.nature == "lower-bound":
        bad = est.epsilon > eps
        why = (f"lower bound {est.epsilon:.4g} at {est.confidence:.0%} confidence "
               f"{'exceeds' if bad else 'does not exceed'} the claimed epsilon {eps:.4g}")
    else:
        bad = est.epsilon > 1.1 * eps
        why = (f"estimate {est.epsilon:.4g} {'exceeds' if bad else 'does not exceed'} the claimed "
               f"epsilon {eps:.4g} by more than 10%")
    result = power_verdict("VIOLATION" if bad else "PASS", eps, math.inf if ceiling is None else ceiling)
    if result == INCONCLUSIVE:
        why += (f"; but the claim is above {ceiling:.4g}, the most this audit could certify with "
                f"its {est.trials} canaries/trials (its power ceiling): too weak to say")
    return PrivacyVerdict(result, claim, est, why, ceiling)


def epsilon_note(result: PrivacyVerdict) -> str:
    """The note of an epsilon_emp metric: nature, confidence, verdict and reason, the power
    ceiling, and :data:`NOT_A_PROOF`."""
    est = result.estimate
    conf = f"{est.confidence:.0%} confidence" if est.confidence else "no confidence level"
    power = ("" if result.ceiling is None else
             f" Power ceiling {result.ceiling:.4g}: the most this audit could certify with its "
             f"{est.trials} canaries/trials at its confidence.")
    return f"{est.nature} ({conf}); {result.verdict}: {result.reason}.{power} {NOT_A_PROOF}"


def alternative_entry(alt: PrivacyClaim, est: EmpiricalEpsilon, trust_model: str | None = None) -> dict:
    """The report's entry (``privacy_audit.alternatives[i]``) for the verdict of ``est``
    against the alternative claim ``alt``: its label, claim, verdict and reason, and the
    evidence it was judged on (estimator, epsilon_emp, power ceiling) for the ledger."""
    v = verdict(alt, est)
    tm = trust_model or (alt.trust_model.value if alt.trust_model else "central")
    return {"label": alt.label or "alternative", "epsilon_claim": alt.epsilon, "delta": alt.delta,
            "unit": alt.unit, "trust_model": tm, "verdict": v.verdict, "reason": v.reason,
            "estimator": est.estimator, "epsilon_emp": float(est.epsilon), "power_ceiling": v.ceiling,
            "trials": int(est.trials)}


def audit_entry(result: PrivacyVerdict, alternatives: list[dict] | None = None,
                lint: list[dict] | None = None) -> dict:
    """A finding's ``privacy_audit`` entry: the verdict of ``result`` with its claim, estimate,
    reason and power ceiling, :data:`NOT_A_PROOF`, the ``alternatives``' entries
    (:func:`alternative_entry`) and the accounting ``lint`` findings (dicts of
    :class:`audit.privacy.lint.LintFinding`), each when given."""
    claim = result.claim
    return {
        "verdict": result.verdict, "epsilon_claim": claim.epsilon, "delta": claim.delta,
        "unit": claim.unit, "estimate": result.estimate.to_dict(), "reason": result.reason,
        "power_ceiling": result.ceiling, "statement": NOT_A_PROOF,
        **({"alternatives": alternatives} if alternatives else {}),
        **({"lint": lint} if lint is not None else {}),
    }


__all__ = ["NOT_A_PROOF", "VERDICTS", "PrivacyVerdict", "alternative_entry", "audit_entry", "epsilon_note",
           "verdict"]
