"""The accounting lint's facts of an Opacus run: what ``make_private`` set up, and what ran.

:func:`opacus_facts` reads a ``PrivacyEngine``, its ``DPOptimizer`` and the data loader that
trained into a :class:`~audit.privacy.lint.facts.RunFacts`:

* accountant and sampling assumed: ``opacus-<mechanism>``; every Opacus accountant (RDP,
  PRV, GDP) assumes Poisson sampling at the rate of its history (``1 / len(data_loader)``
  as given to ``make_private``); steps accounted = the history's step count
  (:func:`~audit.integrations.opacus.claim.engine_history`); adjacency add/remove; unit
  one record; noise multiplier = the smallest the accountant composed.
* sampling used, read from the loader: ``poisson`` for a ``DPDataLoader`` (its
  ``UniformWithReplacementSampler``, rate ``sample_rate``), ``shuffle`` /
  ``fixed-size-with-replacement`` / ``sequential`` (or ``all``) for a torch ``BatchSampler``
  over a ``RandomSampler`` / ``SequentialSampler`` (rate batch size / records); anything
  else is unknown.
* secure RNG: ``PrivacyEngine.secure_mode`` (and the optimizer's).
* as observed, with an :class:`OpacusStepTap` attached before training: the steps that
  updated the model (calls of the base optimizer's ``step``, including any made around the
  DPOptimizer), the noise actually added (``p.grad`` after ``add_noise`` minus the clipped
  sum ``p.summed_grad``, in units of ``max_grad_norm``: the effective noise multiplier),
  the divisor ``scale_grad`` actually applied per step, and the order of clip and noise in
  the first step. Without a tap the operations are Opacus's own ``pre_step`` order (clip,
  sum, noise) when no method of it is overridden, and the noise is not evaluated (Opacus
  adds ``z C`` by construction; a bug lives in what is overridden, which the tap sees).

Project choices: the measured multiplier's tolerance is ``max(5%, 4 / sqrt(2 N))``, N the
noise coordinates seen (four standard errors of a standard deviation estimated from N
Gaussian draws); a step whose base-optimizer update had no ``add_noise`` before it counts as
noise multiplier 0; the divisor is the least-squares ratio of the gradient before and after
``scale_grad``, per accumulated batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from audit.core.errors import invalid
from audit.core.validation import check_interval, check_options
from audit.integrations.opacus.claim import engine_history
from audit.privacy.lint.facts import ADJACENCIES, UNITS, RunFacts
from audit.privacy.lint.rules import run_lint

OWNER = "opacus_facts"
#: DPOptimizer.pre_step's order: per-sample clip, sum, Gaussian noise (then scale)
OPACUS_OPERATIONS = ("clip", "aggregate", "noise")
_PRE_STEP_METHODS = ("pre_step", "clip_and_accumulate", "add_noise", "scale_grad")


def _is_dp_optimizer(optimizer: Any) -> bool:
    return all(hasattr(optimizer, a) for a in ("original_optimizer", "noise_multiplier", *_PRE_STEP_METHODS))


class OpacusStepTap:
    """Observes a DPOptimizer's steps: base-optimizer steps, the noise added, the divisor.

    Wraps (as instance attributes, around whatever is there, your overrides included) the
    optimizer's ``clip_and_accumulate``, ``add_noise`` and ``scale_grad``, and the base
    optimizer's ``step``. Attach it after ``make_private`` and before training.
    """

    def __init__(self, optimizer: Any) -> None:
        if not _is_dp_optimizer(optimizer):
            raise invalid("optimizer", "OpacusStepTap", "an Opacus DPOptimizer (from make_private)",
                          type(optimizer).__name__)
        self.opt = optimizer
        self.steps = 0  #: base-optimizer steps (model updates)
        self.noised_steps = 0  #: of those, with add_noise called before them
        self.divisors: list[float] = []  #: scale_grad's divisor per step, per accumulated batch
        self.operations: tuple[str, ...] | None = None  #: the first step's order
        self.noise_sumsq, self.noise_count = 0.0, 0
        self._ops: list[str] = []
        self._noised: list[torch.Tensor] | None = None
        self._pending = False
        self._saved = [(obj, name, obj.__dict__.get(name)) for obj, name in (
            (optimizer, "clip_and_accumulate"), (optimizer, "add_noise"), (optimizer, "scale_grad"),
            (optimizer.original_optimizer, "step"))]
        self._wrap(optimizer, "clip_and_accumulate", before=None, after=self._after_clip)
        self._wrap(optimizer, "add_noise", before=self._before_noise, after=self._after_noise)
        self._wrap(optimizer, "scale_grad", before=None, after=self._after_scale)
        self._wrap(optimizer.original_optimizer, "step", before=self._before_step, after=None)

    def detach(self) -> None:
        """Restore the wrapped methods as they were before (what it observed is kept)."""
        for obj, name, saved in self._saved:
            if saved is None:
                obj.__dict__.pop(name, None)
            else:
                obj.__dict__[name] = saved

    @staticmethod
    def _wrap(obj: Any, name: str, *, before: Any, after: Any) -> None:
        inner = getattr(obj, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            state = before() if before else None
            out = inner(*args, **kwargs)
            if after:
                after(state)
            return out

        setattr(obj, name, wrapped)

    def _grads(self) -> list[torch.Tensor]:
        return [p.grad.detach().clone() for p in self.opt.params if p.grad is not None]

    def _after_clip(self, _: Any) -> None:
        self._ops += ["clip", "aggregate"]

    def _before_noise(self) -> list[torch.Tensor]:
        return [p.summed_grad.detach().clone() for p in self.opt.params]

    def _after_noise(self, summed: list[torch.Tensor]) -> None:
        self._ops.append("noise")
        noised = self._grads()
        for s, g in zip(summed, noised):
            noise = g.reshape(-1).double() - s.reshape(-1).double()
            self.noise_sumsq += float(noise.pow(2).sum())
            self.noise_count += noise.numel()
        self._noised, self._pending = noised, True

    def _after_scale(self, _: Any) -> None:
        if self._noised is None:
            return
        scaled = self._grads()
        num = sum(float((a.double() * b.double()).sum()) for a, b in zip(self._noised, scaled))
        den = sum(float(b.double().pow(2).sum()) for b in scaled)
        if den > 0:
            self.divisors.append(num / den / max(int(self.opt.accumulated_iterations), 1))
        self._noised = None

    def _before_step(self) -> None:
        self.steps += 1
        self.noised_steps += self._pending
        self._pending = False
        if self.operations is None:
            self.operations = tuple(self._ops)
        self._ops = []

    def effective_noise_multiplier(self) -> tuple[float | None, float, str]:
        """(measured noise std / ``max_grad_norm``, its tolerance, where it comes from)."""
        clip = float(self.opt.max_grad_norm)
        if self.steps > self.noised_steps:
            return 0.0, 0.0, f"{self.steps - self.noised_steps} of {self.steps} steps had no add_noise"
        if not self.noise_count or clip <= 0:
            return None, 0.0, "no noise observed"
        eff = math.sqrt(self.noise_sumsq / self.noise_count) / clip
        tol = max(0.05, 4.0 / math.sqrt(2.0 * self.noise_count))
        return eff, tol, f"measured over {self.noised_steps} steps, {self.noise_count} noise draws"


def data_loader_sampling(data_loader: Any, n: int) -> tuple[str | None, float | None]:
    """How ``data_loader`` draws its batches, and at what (expected) rate; (None, None) when
    its sampler is not one of torch's or Opacus's."""
    from opacus.utils.uniform_sampler import (
        DistributedUniformWithReplacementSampler,
        UniformWithReplacementSampler,
    )
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    bs = getattr(data_loader, "batch_sampler", None)
    if isinstance(bs, (UniformWithReplacementSampler, DistributedUniformWithReplacementSampler)):
        return "poisson", float(bs.sample_rate)
    if isinstance(bs, BatchSampler) and bs.batch_size:
        rate = min(1.0, bs.batch_size / n)
        if isinstance(bs.sampler, RandomSampler):
            return ("fixed-size-with-replacement" if bs.sampler.replacement else "shuffle"), rate
        if isinstance(bs.sampler, SequentialSampler):
            return ("all" if bs.batch_size >= n else "sequential"), rate
    return None, None


def _own_pre_step(optimizer: Any) -> bool:
    """No method of ``pre_step`` overridden on the instance or outside Opacus's classes."""
    for name in _PRE_STEP_METHODS:
        if name in vars(optimizer):
            return False
        owner = next(c for c in type(optimizer).__mro__ if name in vars(c))
        if not owner.__module__.startswith("opacus."):
            return False
    return True


def opacus_facts(privacy_engine: Any, optimizer: Any, data_loader: Any, *, delta: float,
                 claimed_unit: str = "record", claimed_adjacency: str = "add-remove",
                 steps_run: int | None = None, dataset_size: int | None = None,
                 num_clients: int | None = None, tap: OpacusStepTap | None = None) -> RunFacts:
    """The lint's facts of an Opacus run: ``privacy_engine`` after training, its
    ``optimizer`` and the ``data_loader`` that trained (the one ``make_private`` returned, or
    whichever you iterated). ``steps_run`` (else the ``tap``'s count) is the optimizer steps
    run; ``dataset_size`` the records (else ``len(data_loader.dataset)``); ``num_clients``
    the population for a client-level claim (e.g. Opacus inside each Flower client)."""
    if not hasattr(privacy_engine, "accountant"):
        raise invalid("privacy_engine", OWNER, "an Opacus PrivacyEngine", type(privacy_engine).__name__)
    if not _is_dp_optimizer(optimizer):
        raise invalid("optimizer", OWNER, "an Opacus DPOptimizer (from make_private)", type(optimizer).__name__)
    delta = check_interval("delta", OWNER, delta, low=0, high=1, closed="neither")
    claimed_unit = check_options("claimed_unit", OWNER, claimed_unit, UNITS)
    claimed_adjacency = check_options("claimed_adjacency", OWNER, claimed_adjacency, ADJACENCIES)
    if tap is not None and not isinstance(tap, OpacusStepTap):
        raise invalid("tap", OWNER, "an OpacusStepTap", type(tap).__name__)
    if tap is not None and tap.opt is not optimizer:
        raise invalid("tap", OWNER, "the OpacusStepTap of this optimizer", "a tap of another optimizer")
    if dataset_size is None:
        dataset_size = len(data_loader.dataset)
    n = check_interval("dataset_size", OWNER, dataset_size, kind=int, low=1)
    if steps_run is None and tap is not None:
        steps_run = tap.steps
    history = engine_history(privacy_engine)
    rates = {q for _, q, _ in history}
    sigmas = [s for s, _, _ in history]
    used, rate_used = data_loader_sampling(data_loader, n)
    eff, tol, source, divisors, ops = None, 1e-6, None, None, None
    if tap is not None:
        eff, tol, source = tap.effective_noise_multiplier()
        divisors = tuple(tap.divisors) or None
        ops = tap.operations
    if ops is None and _own_pre_step(optimizer):
        ops = OPACUS_OPERATIONS
    expected = float(optimizer.expected_batch_size) if optimizer.loss_reduction == "mean" else 1.0
    return RunFacts(
        framework="opacus", accountant=f"opacus-{privacy_engine.accountant.mechanism()}",
        sampling_assumed="poisson", sample_rate_assumed=next(iter(rates)) if len(rates) == 1 else None,
        sampling_used=used, sample_rate_used=rate_used,
        steps_accounted=sum(k for _, _, k in history), steps_run=steps_run,
        delta=delta, n_records=n, n_clients=num_clients,
        unit_claimed=claimed_unit, unit_released="record",
        adjacency_claimed=claimed_adjacency, adjacency_accounted="add-remove",
        noise_multiplier=min(sigmas) if sigmas else float(optimizer.noise_multiplier),
        effective_noise_multiplier=eff, effective_noise_tolerance=tol, noise_source=source,
        mean_divisor_expected=expected if expected > 0 else None, mean_divisors_used=divisors,
        secure_rng=bool(privacy_engine.secure_mode and optimizer.secure_mode), operations=ops)


def opacus_lint(privacy_engine: Any, optimizer: Any, data_loader: Any, *, delta: float,
                steps_run: int | None = None, tap: OpacusStepTap | None = None) -> list[dict]:
    """The accounting lint of a finished Opacus training (:func:`opacus_facts`, then
    :func:`~audit.privacy.lint.run_lint` with the skipped rules as ``info``), as the report's
    ``privacy_audit.lint`` entries."""
    facts = opacus_facts(privacy_engine, optimizer, data_loader, delta=delta, steps_run=steps_run, tap=tap)
    return [f.to_dict() for f in run_lint(facts, report_skipped=True)]


__all__ = ["OPACUS_OPERATIONS", "OpacusStepTap", "data_loader_sampling", "opacus_facts", "opacus_lint"]
