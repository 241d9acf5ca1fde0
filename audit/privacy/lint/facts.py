"""What the accounting lint knows of a DP training run: :class:`RunFacts`.

A :class:`RunFacts` holds, side by side, what the privacy accounting *assumed* (its sampling,
its step count, its neighbouring relation, its noise multiplier) and what the run *did* or
*claims* (the sampler used, the steps run, the unit and adjacency stated in the report, the
noise actually added, the order of clip and noise). Every field is optional: ``None`` means
"unknown", and a rule that needs an unknown field is not evaluated (``run_lint(...,
report_skipped=True)`` says so with an ``info`` finding). The facts are plain values, so
they can come from a real Opacus or Flower object (``audit.integrations.opacus.lint_facts``,
``audit.integrations.flower.lint_facts``), from a config file, or be written by hand.

Vocabularies (the project's own names; each field is checked against its list):

* sampling assumed by the accountant (:data:`SAMPLING_ASSUMED`): ``poisson`` (Opacus's RDP,
  PRV and GDP accountants; Flower's ``SamplingMethod.POISSON``; DP-FedAvg of McMahan et al.
  2018), ``without-replacement`` (a fixed-size subset drawn afresh each step), ``none`` (no
  amplification by sampling is claimed: any sampler is fine).
* sampling used (:data:`SAMPLING_USED`): ``poisson`` (Opacus ``DPDataLoader`` /
  ``UniformWithReplacementSampler``), ``without-replacement`` (Flower's FedAvg cohort:
  ``random.sample`` of the connected nodes), ``shuffle`` (a torch ``DataLoader(shuffle=True)``:
  disjoint fixed-size batches of one permutation per epoch), ``sequential``,
  ``fixed-size-with-replacement`` (``RandomSampler(replacement=True)`` in fixed-size
  batches), ``all`` (every record or client at every step).
* units (:data:`UNITS`): ``record`` (one training example) or ``client``; the released unit
  may also be ``none`` (no DP mechanism found in the configuration).
* adjacency (:data:`ADJACENCIES`): ``add-remove`` or ``replace-one``.
* operations (:data:`OPERATIONS`): the steps applied to the released quantity, in order:
  ``clip``, ``noise``, ``aggregate``, ``secagg`` (secure-aggregation masking); other names
  are kept and ignored by the rules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from audit.core.errors import invalid
from audit.core.validation import check_bool, check_interval, check_options

SAMPLING_ASSUMED = ("poisson", "without-replacement", "none")
SAMPLING_USED = ("poisson", "without-replacement", "shuffle", "sequential",
                 "fixed-size-with-replacement", "all")
UNITS = ("record", "client")
RELEASED_UNITS = UNITS + ("none",)
ADJACENCIES = ("add-remove", "replace-one")
OPERATIONS = ("clip", "noise", "aggregate", "secagg")

OWNER = "RunFacts"


@dataclass(frozen=True)
class RunFacts:
    """A DP training run as configured and as observed (every field optional, ``None`` =
    unknown).

    Attributes:
        framework: Where the facts come from (``opacus``, ``flower``, or yours); for messages.
        accountant: The accountant that produced the claim (e.g. ``opacus-prv``,
            ``flower-rdp``); for messages.
        sampling_assumed: The sampling the accountant's analysis assumes.
        sample_rate_assumed: The per-step sampling rate it accounts.
        sampling_used: The sampler that actually drew the batches or cohorts.
        sample_rate_used: The (expected) fraction of records or clients it draws per step.
        steps_accounted: Steps (or rounds) the accountant composed.
        steps_run: Steps (or rounds) that actually updated the model, as observed.
        delta: The delta of the claim.
        n_records: Records in the training data (record-level delta check).
        n_clients: Clients in the population (client-level delta check).
        unit_claimed: The unit the published claim names.
        unit_released: The unit the mechanism actually protects.
        adjacency_claimed: The neighbouring relation the published claim names.
        adjacency_accounted: The relation the accountant analysed.
        noise_multiplier: The noise multiplier the accountant composed (smallest, if several).
        effective_noise_multiplier: The noise standard deviation on the released statistic
            divided by that statistic's L2 sensitivity, as run (computed from the
            configuration or measured).
        effective_noise_tolerance: Relative tolerance of that comparison (a measured value
            carries estimation error; 1e-6 for a configured one).
        noise_source: One phrase saying where the effective multiplier comes from.
        mean_divisor_expected: The data-independent divisor of the released mean (Opacus's
            ``expected_batch_size``, Flower's ``num_sampled_clients``).
        mean_divisors_used: The divisor actually used at each step or round, as observed.
        secure_rng: Whether the noise comes from a cryptographically secure generator.
        operations: The operations applied to the released quantity, in order.
    """

    framework: str | None = None
    accountant: str | None = None
    sampling_assumed: str | None = None
    sample_rate_assumed: float | None = None
    sampling_used: str | None = None
    sample_rate_used: float | None = None
    steps_accounted: int | None = None
    steps_run: int | None = None
    delta: float | None = None
    n_records: int | None = None
    n_clients: int | None = None
    unit_claimed: str | None = None
    unit_released: str | None = None
    adjacency_claimed: str | None = None
    adjacency_accounted: str | None = None
    noise_multiplier: float | None = None
    effective_noise_multiplier: float | None = None
    effective_noise_tolerance: float = 1e-6
    noise_source: str | None = None
    mean_divisor_expected: float | None = None
    mean_divisors_used: tuple[float, ...] | None = None
    secure_rng: bool | None = None
    operations: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        for name, options in (("sampling_assumed", SAMPLING_ASSUMED), ("sampling_used", SAMPLING_USED),
                              ("unit_claimed", UNITS), ("unit_released", RELEASED_UNITS),
                              ("adjacency_claimed", ADJACENCIES), ("adjacency_accounted", ADJACENCIES)):
            if getattr(self, name) is not None:
                check_options(name, OWNER, getattr(self, name), options)
        for name in ("sample_rate_assumed", "sample_rate_used"):
            if getattr(self, name) is not None:
                put(name, check_interval(name, OWNER, getattr(self, name), low=0, high=1, closed="right"))
        for name in ("steps_accounted", "steps_run"):
            if getattr(self, name) is not None:
                put(name, check_interval(name, OWNER, getattr(self, name), kind=int, low=0))
        for name in ("n_records", "n_clients"):
            if getattr(self, name) is not None:
                put(name, check_interval(name, OWNER, getattr(self, name), kind=int, low=1))
        if self.delta is not None:
            put("delta", check_interval("delta", OWNER, self.delta, low=0, high=1))
        for name in ("noise_multiplier", "effective_noise_multiplier", "effective_noise_tolerance"):
            if getattr(self, name) is not None:
                put(name, check_interval(name, OWNER, getattr(self, name), low=0))
        if self.mean_divisor_expected is not None:
            put("mean_divisor_expected", check_interval(
                "mean_divisor_expected", OWNER, self.mean_divisor_expected, low=0, closed="neither"))
        if self.mean_divisors_used is not None:
            used = tuple(check_interval("mean_divisors_used", OWNER, d, low=0, closed="neither")
                         for d in self.mean_divisors_used)
            put("mean_divisors_used", used)
        if self.secure_rng is not None:
            put("secure_rng", check_bool("secure_rng", OWNER, self.secure_rng))
        if self.operations is not None:
            if isinstance(self.operations, str) or not all(isinstance(o, str) for o in self.operations):
                raise invalid("operations", OWNER, "a sequence of operation names (str)", self.operations)
            put("operations", tuple(self.operations))

    @property
    def claim_unit(self) -> str | None:
        """The unit whose population sizes delta: the claimed one, else the released one."""
        if self.unit_claimed is not None:
            return self.unit_claimed
        return self.unit_released if self.unit_released in UNITS else None

    @property
    def population(self) -> int | None:
        """Records (record-level) or clients (client-level) in the population of the claim's
        unit (``None`` when that unit or its count is unknown)."""
        unit = self.claim_unit
        return self.n_records if unit == "record" else self.n_clients if unit == "client" else None

    def to_dict(self) -> dict:
        """JSON-ready form (tuples as lists)."""
        d = asdict(self)
        for key in ("mean_divisors_used", "operations"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d


__all__ = ["ADJACENCIES", "OPERATIONS", "RELEASED_UNITS", "RunFacts", "SAMPLING_ASSUMED",
           "SAMPLING_USED", "UNITS"]
