"""The accounting lint's rules: each a small check of one assumption of DP accounting.

Each rule reads a :class:`~audit.privacy.lint.facts.RunFacts` and returns zero or more
:class:`~audit.privacy.lint.findings.LintFinding`; a rule whose facts are unknown returns
nothing (:func:`run_lint` can say it was skipped). :data:`RULES` lists them, in this order:

``sampling``, ``steps``, ``delta``, ``unit``, ``adjacency``, ``noise-scale``, ``secure-rng``,
``clip-order`` (see ``docs/lint.md`` for each one's reasoning and fix).

Project choices: thresholds are stated in each rule's docstring (delta: error at
``delta >= 1/n``, warning above ``1/(10 n)``; step counts and sample rates compared exactly,
rates to a relative 1e-6; the noise multiplier to the facts' own tolerance).
"""

from __future__ import annotations

from audit.core.errors import invalid
from audit.privacy.lint.facts import RunFacts
from audit.privacy.lint.findings import LintFinding, LintRule

#: delta above DELTA_WARN_FRACTION / n is a warning ("delta << 1/n" not met by an order of magnitude)
DELTA_WARN_FRACTION = 0.1
RATE_RTOL = 1e-6


def _who(facts: RunFacts) -> str:
    return facts.accountant or facts.framework or "the accountant"


def _close(a: float, b: float, rtol: float = RATE_RTOL) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b))


def check_sampling(facts: RunFacts) -> list[LintFinding]:
    """The sampler used must be the one the accountant's amplification assumes, at its rate.

    Opacus's accountants (RDP, PRV, GDP) analyse Poisson subsampling at rate ``q = 1 /
    len(data_loader)``; ``make_private(poisson_sampling=False)`` keeps your loader, which
    "technically doesn't fit the assumptions made by privacy accounting" (Opacus docstring of
    ``make_private``). Shuffled fixed-size batches can be much less private than Poisson
    accounting says (Chua et al. 2024, "How Private are DP-SGD Implementations?", ICML), and
    the sampling and neighbouring relation must match the accounting (Lebeda et al. 2024,
    "Avoiding Pitfalls for Privacy Accounting of Subsampled Mechanisms under Composition").
    ``none`` (no amplification claimed) fits any sampler; ``all`` fits any assumption at rate
    1. Error on a mismatch of method or of rate (relative 1e-6).
    """
    assumed, used = facts.sampling_assumed, facts.sampling_used
    if assumed is None or used is None or assumed == "none":
        return []
    q_a, q_u = facts.sample_rate_assumed, facts.sample_rate_used
    if used == "all" and (q_a is None or q_a == 1.0):
        return []
    if used != assumed and used != "all":
        return [LintFinding("sampling", "error",
                            f"{_who(facts)} assumes {assumed} sampling"
                            + (f" at rate {q_a:.4g}" if q_a is not None else "")
                            + f", but the batches/cohorts are drawn by {used} sampling"
                            + (f" (rate {q_u:.4g})" if q_u is not None else ""),
                            f"draw with {assumed} sampling (Opacus: make_private(poisson_sampling=True), "
                            "i.e. DPDataLoader) or account for the sampler used (e.g. without "
                            "amplification)")]
    if q_a is not None and q_u is not None and not _close(q_a, q_u):
        return [LintFinding("sampling", "error",
                            f"{_who(facts)} accounts {assumed} sampling at rate {q_a:.6g}, the sampler "
                            f"draws at rate {q_u:.6g}",
                            "account with the rate the sampler uses (batch size / records, or cohort / "
                            "population), and the same population size on both sides")]
    return []


def check_steps(facts: RunFacts) -> list[LintFinding]:
    """The accountant must compose every step (round) that updated the model.

    Composition is over every release (Dwork & Roth 2014, Thm 3.16/3.20); a step that ran
    without being accounted (a step through the base optimizer, an accountant replaced on
    resume, a claim computed for fewer rounds than ran) makes the epsilon too small: error.
    More steps accounted than run over-states epsilon: a warning that the accounting does
    not describe this run.
    """
    acc, run = facts.steps_accounted, facts.steps_run
    if acc is None or run is None or acc == run:
        return []
    if run > acc:
        return [LintFinding("steps", "error",
                            f"{run} steps ran but {_who(facts)} composed {acc}: "
                            f"{run - acc} releases are not in the epsilon",
                            "take every step through the DP optimizer/strategy whose accountant made "
                            "the claim, and account the history of the whole run")]
    return [LintFinding("steps", "warning",
                        f"{_who(facts)} composed {acc} steps but only {run} ran: the epsilon is for "
                        "another run (an upper bound for this one)",
                        "report the epsilon of the steps that ran")]


def check_delta(facts: RunFacts) -> list[LintFinding]:
    """delta must be well below 1/n, n the records (record-level) or clients (client-level).

    A mechanism that publishes each unit's data whole with probability delta is
    (0, delta)-DP, and with ``delta >= 1/n`` it publishes one unit in expectation (Dwork &
    Roth 2014, section 2.3): error. Ponomareva et al. 2023 ("How to DP-fy ML", JAIR) ask for
    ``delta << 1/n``; this project reads "<<" as at least an order of magnitude: warning for
    ``1/(10 n) < delta < 1/n``.
    """
    n, delta = facts.population, facts.delta
    if n is None or delta is None:
        return []
    unit = facts.claim_unit
    if delta >= 1.0 / n:
        return [LintFinding("delta", "error",
                            f"delta {delta:g} >= 1/n = {1.0 / n:.3g} for n = {n} {unit}s: one {unit} may "
                            "be released outright",
                            f"choose delta well below 1/n, e.g. <= {DELTA_WARN_FRACTION / n:.2g}")]
    if delta > DELTA_WARN_FRACTION / n:
        return [LintFinding("delta", "warning",
                            f"delta {delta:g} is not << 1/n = {1.0 / n:.3g} (n = {n} {unit}s; threshold "
                            f"{DELTA_WARN_FRACTION:g}/n = {DELTA_WARN_FRACTION / n:.3g})",
                            f"choose delta <= {DELTA_WARN_FRACTION / n:.2g} (an order of magnitude below 1/n)")]
    return []


def check_unit(facts: RunFacts) -> list[LintFinding]:
    """The claim's unit must be the one the mechanism protects.

    Opacus's DP-SGD (inside each Flower client too) bounds one training example's influence:
    record-level; a client holding k records gets only group privacy, (k eps, k e^((k-1) eps)
    delta) (Dwork & Roth 2014, Thm 2.2), so a client-level claim from it is an error. Flower's
    central DP wrappers and ``LocalDpMod`` clip and noise whole client updates: client-level.
    A record-level claim from a client-level mechanism holds (a record change is a change of
    one client's data: replace-one at the client level): info. No DP mechanism at all: error.
    """
    claimed, released = facts.unit_claimed, facts.unit_released
    if claimed is None or released is None or claimed == released:
        return []
    if released == "none":
        return [LintFinding("unit", "error",
                            f"the claim is {claimed}-level but no DP mechanism was found in the "
                            f"{facts.framework or 'run'} configuration",
                            "add the DP mechanism (or state which one runs), or withdraw the claim")]
    if claimed == "client":
        return [LintFinding("unit", "error",
                            "the claim is client-level but the mechanism protects one record "
                            "(sample-level DP-SGD): a client's whole data is not covered",
                            "state the claim per record, or add client-level DP (clip and noise each "
                            "client's update, e.g. Flower's DifferentialPrivacy*FixedClipping)")]
    return [LintFinding("unit", "info",
                        "the claim is record-level and the mechanism protects a whole client: it "
                        "holds (a record change is a replace-one change of one client)",
                        "you may state the stronger client-level claim")]


def check_adjacency(facts: RunFacts) -> list[LintFinding]:
    """The claim's neighbouring relation must be the one the accountant analysed.

    Under replace-one a clipped sum moves by up to 2C, not C as under add/remove, and an
    add/remove (eps, delta) gives only (2 eps, (1 + e^eps) delta) under replace-one (group
    privacy of size 2, Dwork & Roth 2014, section 2.3); a replace-one guarantee says nothing
    about adding a unit (the data set's size may be released exactly). Opacus's accountants
    are add/remove; Flower's ``RdpAccountant`` states its ``neighboring_relation``. Error on any
    mismatch.
    """
    claimed, accounted = facts.adjacency_claimed, facts.adjacency_accounted
    if claimed is None or accounted is None or claimed == accounted:
        return []
    why = ("replace-one needs twice the L2 sensitivity (2C) of add/remove" if claimed == "replace-one"
           else "a replace-one guarantee does not bound adding or removing a unit")
    return [LintFinding("adjacency", "error",
                        f"the claim is stated under {claimed} adjacency but {_who(facts)} accounted "
                        f"{accounted}: {why}",
                        f"state the claim under {accounted} adjacency, or re-account under {claimed}"
                        + (" with sensitivity 2C (half the noise multiplier)" if claimed == "replace-one" else ""))]


def check_noise_scale(facts: RunFacts) -> list[LintFinding]:
    """The noise on the released mean must be the accounted multiplier times its sensitivity,
    and the mean must divide by a data-independent number.

    DP-SGD and DP-FedAvg add N(0, (z C)^2) to a clipped *sum* and divide by a fixed expected
    batch/cohort size (Abadi et al. 2016; McMahan et al. 2018; Opacus's ``scale_grad`` divides
    by ``expected_batch_size``). Noise scaled down once more, or divided by a number smaller
    than the aggregate's divisor (Flower's ``z C / num_sampled_clients`` on a mean over fewer
    clients, or weighted by examples), gives an effective multiplier below z: error. Dividing
    by the realised (data-dependent) batch or cohort size is not post-processing of the noisy
    sum: error when the divisors vary. A constant divisor other than the expected one scales
    noise and signal alike (post-processing): info. More noise than accounted: info.
    """
    out: list[LintFinding] = []
    z, eff = facts.noise_multiplier, facts.effective_noise_multiplier
    source = f" ({facts.noise_source})" if facts.noise_source else ""
    if z is not None and eff is not None:
        tol = facts.effective_noise_tolerance
        if eff < z * (1 - tol):
            out.append(LintFinding("noise-scale", "error",
                                   f"effective noise multiplier {eff:.4g}{source} is below the "
                                   f"accounted {z:.4g}",
                                   "calibrate the noise std to z*C on the clipped sum and divide sum "
                                   "and noise by the same fixed expected size (Flower: num_sampled_clients "
                                   "= the cohort size, equal client weights)"))
        elif eff > z * (1 + tol):
            out.append(LintFinding("noise-scale", "info",
                                   f"effective noise multiplier {eff:.4g}{source} is above the accounted "
                                   f"{z:.4g}: the claim is conservative",
                                   "account the noise that is added to state a smaller epsilon"))
    used, expected = facts.mean_divisors_used, facts.mean_divisor_expected
    if used:
        lo, hi = min(used), max(used)
        if not _close(lo, hi):
            out.append(LintFinding("noise-scale", "error",
                                   f"the released mean divides by a data-dependent size ({lo:g} to {hi:g} "
                                   "over the run), not by a fixed expected one"
                                   + (f" ({expected:g})" if expected is not None else ""),
                                   "divide by the expected batch/cohort size (Opacus: keep DPOptimizer."
                                   "scale_grad; Flower: fixed cohort, equal weights)"))
        elif expected is not None and not _close(lo, expected):
            out.append(LintFinding("noise-scale", "info",
                                   f"the released mean divides by {lo:g}, not the expected {expected:g}: a "
                                   "constant, so privacy is unaffected; the step size is scaled by "
                                   f"{expected / lo:.3g}",
                                   "divide by the expected batch size"))
    return out


def check_secure_rng(facts: RunFacts) -> list[LintFinding]:
    """The noise should come from a cryptographically secure generator.

    Opacus warns "Secure RNG turned off" for ``PrivacyEngine(secure_mode=False)``: the noise
    comes from PyTorch's pseudo-random generator, and without ``secure_mode`` neither a
    CSPRNG nor Opacus's mitigation of floating-point attacks on Gaussian sampling (Holohan &
    Braghin 2021, arXiv:2107.10138; Haney et al. 2022, arXiv:2112.05307; after Mironov 2012
    on the Laplace mechanism) is used. Flower 1.42 draws its DP noise from
    ``np.random.normal`` (``add_gaussian_noise_inplace``), with no secure mode. Warning.
    """
    if facts.secure_rng is None or facts.secure_rng:
        return []
    fixes = {"opacus": "use PrivacyEngine(secure_mode=True) (needs torchcsprng) for the final run",
             "flower": "add the noise from a CSPRNG in your own strategy or mod (Flower 1.42 has no "
                       "secure mode)"}
    return [LintFinding("secure-rng", "warning",
                        f"the DP noise of {facts.framework or 'the run'} comes from a non-cryptographic "
                        "PRNG (secure_rng=False): fine for experiments, not for a deployed guarantee",
                        fixes.get(facts.framework or "", "draw the noise from a cryptographically "
                                  "secure generator (Opacus: secure_mode=True)"))]


def check_clip_order(facts: RunFacts) -> list[LintFinding]:
    """Noise must be added after the clipping that bounds its sensitivity.

    The Gaussian mechanism's guarantee needs the noised quantity's sensitivity bounded
    (Dwork & Roth 2014, Thm A.1): noise added before any clip, or with no clip at all, is
    calibrated to nothing (a later clip is post-processing of a non-private value). Clipping
    after secure-aggregation masking clips the masked vector, so the unmasked sum is not a
    sum of clipped updates (Flower's ``secaggplus_mod`` masks what the mods inside it return
    and clears the arrays, so a ``fixedclipping_mod`` outside it has nothing to clip; its
    docstring asks to consider the order of mods). Errors. Flower chains mods so the reply
    passes the *last* mod of the list first.
    """
    ops = facts.operations
    if ops is None or "noise" not in ops:
        return []
    out: list[LintFinding] = []
    first_noise = ops.index("noise")
    clip_at = ops.index("clip") if "clip" in ops else None
    order = " -> ".join(ops)
    if clip_at is None:
        out.append(LintFinding("clip-order", "error",
                               f"noise is added but nothing clips ({order}): the sensitivity is unbounded",
                               "clip every update before the noise (Flower's client-side wrapper needs "
                               "fixedclipping_mod among the client mods)"))
    elif clip_at > first_noise:
        out.append(LintFinding("clip-order", "error",
                               f"noise is added before clipping ({order}): the noise was calibrated to "
                               "a bound that did not hold for its input",
                               "clip first, then add noise (Flower: put the noise mod before, i.e. "
                               "outside, the clipping mod in the mods list)"))
    if clip_at is not None and "secagg" in ops[:clip_at]:
        out.append(LintFinding("clip-order", "error",
                               f"clipping runs after secure-aggregation masking ({order})",
                               "clip before masking (Flower: mods=[secaggplus_mod, fixedclipping_mod])"))
    return out


RULES: tuple[LintRule, ...] = (
    LintRule("sampling", "the sampler used is the one the accountant assumes, at its rate",
             ("sampling_assumed", "sampling_used"), check_sampling),
    LintRule("steps", "every step that ran is accounted, and no more",
             ("steps_accounted", "steps_run"), check_steps),
    LintRule("delta", "delta is well below 1/n", ("delta", "population"), check_delta),
    LintRule("unit", "the claimed unit is the protected one", ("unit_claimed", "unit_released"), check_unit),
    LintRule("adjacency", "the claimed adjacency is the accounted one",
             ("adjacency_claimed", "adjacency_accounted"), check_adjacency),
    LintRule("noise-scale", "the noise on the released mean matches the accounted multiplier",
             (), check_noise_scale, ("effective_noise_multiplier", "mean_divisors_used")),
    LintRule("secure-rng", "the noise comes from a secure generator", ("secure_rng",), check_secure_rng),
    LintRule("clip-order", "noise comes after clipping, clipping before masking", ("operations",), check_clip_order),
)

RULE_IDS = tuple(r.id for r in RULES)


def run_lint(facts: RunFacts, *, rules: tuple[LintRule, ...] = RULES,
             report_skipped: bool = False) -> list[LintFinding]:
    """Every rule's findings on ``facts``, in rule order (errors first within a rule as the
    rule returns them); with ``report_skipped`` an ``info`` finding for each rule whose
    facts are unknown, naming them."""
    if not isinstance(facts, RunFacts):
        raise invalid("facts", "run_lint", "a RunFacts", type(facts).__name__)
    findings: list[LintFinding] = []
    for rule in rules:
        missing = rule.missing(facts)
        if missing:
            if report_skipped:
                findings.append(LintFinding(rule.id, "info",
                                            f"not evaluated: unknown {', '.join(missing)}",
                                            f"give {', '.join(missing)} to check that {rule.summary}"))
            continue
        findings.extend(rule.check(facts))
    return findings


__all__ = ["DELTA_WARN_FRACTION", "RULES", "RULE_IDS", "check_adjacency", "check_clip_order",
           "check_delta", "check_noise_scale", "check_sampling", "check_secure_rng", "check_steps",
           "check_unit", "run_lint"]
