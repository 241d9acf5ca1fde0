"""Audit your own Opacus training: empirical epsilon beside the epsilon Opacus claims.

You hand over how your script builds its private training (a ``make`` function that calls
``PrivacyEngine.make_private`` as your script does) and, optionally, how it trains; the
audit runs it with canaries, measures an empirical epsilon, and sets it beside
``privacy_engine.get_epsilon(delta)`` with a verdict (PASS / VIOLATION) in the project's
report format.

Example (the body of ``make`` is your script, unchanged; ~20 lines)::

    import torch
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset
    from audit.opacus_audit import OpacusRun, audit_opacus, opacus_findings_report

    def make(train_data, seed):               # your script's setup, on the data given
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        loader = DataLoader(train_data, batch_size=64)
        engine = PrivacyEngine(accountant="rdp")
        model, optimizer, loader = engine.make_private(
            module=model, optimizer=optimizer, data_loader=loader,
            noise_multiplier=1.0, max_grad_norm=1.0)
        return model, optimizer, loader, engine

    run = OpacusRun(make=make, train_data=TensorDataset(x, y), delta=1e-5, epochs=2)
    # optional: train=my_train(model, optimizer, loader) if your loop is not the plain
    # "zero_grad, loss_fn(model(x), y).backward(), step" one; claimed_epsilon=... if you
    # publish a number other than the engine's own
    findings = audit_opacus(run, estimators=("one-run", "one-run-input"), seed=0)
    print(findings[0]["privacy_audit"]["verdict"], findings[0]["privacy_audit"]["reason"])
    opacus_findings_report(findings, "audit-out")  # report.json + report.html

What is audited (estimators):

* ``one-run`` (white-box, the strongest; the default): Dirac **gradient canaries**
  (Nasr et al. 2021, 2023) in one training run, read with the one-run estimator (Steinke,
  Nasr, Jagielski 2023). ``canaries`` distinct parameter coordinates (default 1000, or
  half the coordinates if fewer) are drawn (seeded); each canary is "in" with probability
  1/2. At every optimizer step each "in" canary is Poisson-sampled with the step's sample
  rate q (``1 / len(data_loader)``, what ``make_private`` accounts), and when sampled its
  per-sample gradient -- 1000 C on its coordinate, zero elsewhere, so clipping always
  binds -- is **appended to Opacus's per-sample gradients** (``p.grad_sample``) just
  before the DPOptimizer clips, sums, noises and scales them. The canaries thus go
  through your optimizer's own ``clip_and_accumulate`` / ``add_noise`` / ``scale_grad``
  (and any override of them in your script). The adversary sees each privatized gradient
  (what the DPOptimizer hands the base optimizer; for plain SGD the parameter update),
  knows the rest of the training data and which of those examples each step sampled (the
  DP guarantee holds against it: their sampling is independent of the canary), so it
  subtracts their clipped sum (Opacus's clipping formula with the optimizer's
  ``max_grad_norm``). What is left on a canary's coordinate, in units of its clipped
  norm, is x_t = 1[sampled] + sigma z_t for a correct mechanism; the score is the
  log-likelihood ratio of the Poisson mixture, sum_t log(1 - q + q exp((x_t - 1/2) / s^2)),
  s the noise level measured on the coordinates without canaries (so a noise bug does
  not blind the score; it is reported as "noise multiplier (measured)"). Guesses: "in"
  for the k highest scores only (a Poisson-sampled canary is often never sampled, so
  "out" guesses are weak) and symmetric budgets, k in 10, 30, 100, 300, each at beta / 8
  (union bound); 95% lower bound. With 1000 canaries the bound cannot exceed ~4-5
  whatever the leak, and it is loose at small q (a canary sampled in no step shows
  nothing): 0-0.37 for a correct claim of 2.07 (29 steps at q = 1/29).
* ``cp`` (white-box, tighter with enough runs, costly): the same gradient canary on one
  coordinate, the same score, ``trials`` independent training runs with the canary in
  and ``trials`` without (2 x ``trials`` calls of ``make`` + training); Clopper-Pearson
  bound at 95% with the threshold chosen on half the runs
  (:func:`audit.estimators.clopper_pearson_epsilon`).
* ``one-run-input`` (black-box, the realistic and much weaker variant): ``input_canaries``
  examples taken out of ``train_data`` get a wrong label (shifted by a random non-zero
  offset) and are each put back with probability 1/2; a fresh run of your ``make`` +
  training on that data; the score of a canary is its loss (with the wrong label) on a
  reference model -- one more run on the data without any canary, which is independent
  of the inclusion bits -- minus its loss on the final model. Clipping and noise keep a
  mislabelled example that is seen a few times from being memorised, so this bound is
  usually 0 on short trainings even when the white-box bound shows a violation.

The claim: ``privacy_engine.get_epsilon(delta)`` after the run (Opacus's accountant; the
label is ``opacus-<mechanism>``, e.g. ``opacus-rdp`` for ``PrivacyEngine(accountant="rdp")``,
``opacus-prv`` for Opacus 1.6's default), unit "one training example (sample-level,
add-or-remove)", central trust model (it holds against anyone seeing the models or the
privatized gradients, not against whoever runs the training). ``OpacusRun.accountant``
re-accounts the engine's history with another Opacus accountant; ``claimed_epsilon``
replaces it by the number you publish (then Opacus's own is kept as an alternative
claim, with its own verdict).

Verdict (:func:`audit.privacy_audit.verdict`): VIOLATION when the lower bound exceeds the
claim. Every estimator here is a 95% lower bound, so a correct claim is flagged with
probability at most 5% per finding (whatever the seed; the seed only makes a run
reproducible). PASS is no proof of privacy (:data:`audit.privacy_audit.NOT_A_PROOF`).

Requirements and limits: the optimizer returned by ``make`` must be Opacus's DPOptimizer
with per-sample gradients (``grad_sample_mode`` "hooks", "functorch" or "ew"; flat or
per-layer clipping); ghost clipping keeps no per-sample gradients and is refused for the
white-box estimators. Gradient canaries are sampled at the rate Opacus accounts, so a data
loader that does not really Poisson-sample is not caught by them (the black-box canaries
go through your data loader). The model must have at least 2 x ``canaries`` parameter
coordinates. The white-box observation is the privatized gradient before the base
optimizer: a leak added after it (e.g. a non-private gradient mixed into the update) is
seen only by the black-box canaries.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset, Subset

from audit.claims import PrivacyClaim, TrustModel
from audit.errors import InvalidParameterError, invalid
from audit.estimators import EmpiricalEpsilon, best_one_run_epsilon, clopper_pearson_epsilon
from audit.privacy_audit import NOT_A_PROOF, verdict
from audit.validation import check_interval, check_options

DEFENSE_NAME = "opacus-dp-sgd"
UNIT = "one training example (sample-level, add-or-remove)"
ESTIMATORS = ("one-run", "cp", "one-run-input")
ACCOUNTANTS = ("rdp", "prv", "gdp")
#: canary gradient = CANARY_SCALE x max_grad_norm on one coordinate: clipping always binds
CANARY_SCALE = 1000.0
#: gradient canaries of the white-box one-run estimator (fewer if the model is smaller)
DEFAULT_CANARIES = 1000
_OWNER = "audit_opacus"


class OpacusTraining(NamedTuple):
    """What ``make`` returns: the objects ``make_private`` returned, and the engine."""

    model: nn.Module
    optimizer: Any  # opacus.optimizers.DPOptimizer
    data_loader: Any
    privacy_engine: Any  # opacus.PrivacyEngine


@dataclass
class OpacusRun:
    """Your Opacus training, as the audit needs it.

    Attributes:
        make: ``make(train_data, seed) -> (model, optimizer, data_loader, privacy_engine)``:
            your script's setup on the dataset it is given (the audit passes ``train_data``,
            or ``train_data`` with input canaries), calling ``make_private`` (or
            ``make_private_with_epsilon``) and returning what it returned plus the engine
            (a tuple or an :class:`OpacusTraining`). Seed your model's initialisation with
            ``seed`` (the audit also calls ``torch.manual_seed(seed)`` before it).
        train_data: The training data: a map-style dataset of ``(x, y)`` pairs, ``y`` an
            int class label (or a 0-d tensor).
        delta: The delta of the claim, in (0, 1).
        epochs: Passes over the data of the default training loop.
        train: Optional ``train(model, optimizer, data_loader) -> None`` running your whole
            training; default: ``epochs`` passes of ``zero_grad``,
            ``loss_fn(model(x), y).backward()``, ``step`` (batches moved to the model's
            device).
        loss_fn: ``loss_fn(outputs, targets) -> scalar`` of the default loop and of the
            black-box scores (default cross-entropy).
        claimed_epsilon: The epsilon you publish, if it is not the engine's own (then the
            engine's is kept as an alternative claim).
        accountant: None (the engine's own accountant) or "rdp" / "prv" / "gdp": re-account
            the engine's history with that Opacus accountant.
        num_classes: Number of classes (for the black-box canaries' wrong labels); default:
            the largest label in ``train_data`` + 1.
        dataset_name: The data's name in the report.
        model_name: The model's name in the report (default: its class name).
        model_params: JSON-ready description of the model for the report.
        training_params: JSON-ready description of the training (optimizer, learning
            rate...) for the report.
    """

    make: Callable[[Dataset, int], Any]
    train_data: Dataset
    delta: float
    epochs: int = 1
    train: Callable[[nn.Module, Any, Any], None] | None = None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy
    claimed_epsilon: float | None = None
    accountant: str | None = None
    num_classes: int | None = None
    dataset_name: str = "user data"
    model_name: str | None = None
    model_params: dict = field(default_factory=dict)
    training_params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "OpacusRun"
        if not callable(self.make):
            raise invalid("make", owner, "a callable make(train_data, seed)", self.make)
        if self.train is not None and not callable(self.train):
            raise invalid("train", owner, "a callable train(model, optimizer, data_loader) or None", self.train)
        try:
            size = len(self.train_data)  # type: ignore[arg-type]
        except TypeError:
            raise invalid("train_data", owner, "a map-style dataset with a length",
                          type(self.train_data).__name__) from None
        if size < 2:
            raise invalid("train_data", owner, "a dataset of at least 2 examples", f"{size} examples")
        self.delta = check_interval("delta", owner, self.delta, low=0, high=1, closed="neither")
        self.epochs = check_interval("epochs", owner, self.epochs, kind=int, low=1)
        if self.claimed_epsilon is not None:
            self.claimed_epsilon = check_interval("claimed_epsilon", owner, self.claimed_epsilon, low=0)
        if self.accountant is not None:
            self.accountant = check_options("accountant", owner, self.accountant, ACCOUNTANTS)
        if self.num_classes is not None:
            self.num_classes = check_interval("num_classes", owner, self.num_classes, kind=int, low=2)


# --------------------------------------------------------------------------- running


def _unpack(made: Any) -> OpacusTraining:
    from opacus import PrivacyEngine
    from opacus.optimizers import DPOptimizer

    if not isinstance(made, (tuple, list)) or len(made) != 4:
        raise invalid("make", _OWNER, "a callable returning (model, optimizer, data_loader, privacy_engine)",
                      type(made).__name__)
    out = OpacusTraining(*made)
    if not isinstance(out.optimizer, DPOptimizer):
        raise invalid("make", _OWNER, "a callable whose optimizer is the DPOptimizer make_private returned",
                      type(out.optimizer).__name__)
    if not isinstance(out.privacy_engine, PrivacyEngine):
        raise invalid("make", _OWNER, "a callable returning the PrivacyEngine as 4th item",
                      type(out.privacy_engine).__name__)
    return out


def _default_train(run: OpacusRun, model: nn.Module, optimizer: Any, loader: Any) -> None:
    device = next(model.parameters()).device
    model.train()
    for _ in range(run.epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            run.loss_fn(model(x), y).backward()
            optimizer.step()


def _train(run: OpacusRun, data: Dataset, seed: int,
           tap: Callable[[Any, float], Any] | None = None) -> tuple[OpacusTraining, Any]:
    """``make`` + training on ``data``; ``tap(optimizer, sample_rate)`` is attached to the
    optimizer before training (and detached after)."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():  # opacus' secure-RNG notice
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        training = _unpack(run.make(data, seed))
    q = 1.0 / len(training.data_loader)
    attached = tap(training.optimizer, q) if tap is not None else None
    torch.manual_seed(seed + 1)
    try:
        with warnings.catch_warnings():  # opacus' full-backward-hook notices
            warnings.filterwarnings("ignore", message=".*[Ff]ull.?backward.?hook.*")
            if run.train is not None:
                run.train(training.model, training.optimizer, training.data_loader)
            else:
                _default_train(run, training.model, training.optimizer, training.data_loader)
    finally:
        if attached is not None:
            attached.detach()
    return training, attached


# --------------------------------------------------------------------------- claims


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


def _history(engine: Any) -> list[tuple[float, float, int]]:
    return [(float(s), float(q), int(n)) for s, q, n in engine.accountant.history]


def opacus_claim(engine: Any, delta: float, *, accountant: str | None = None,
                 claimed_epsilon: float | None = None) -> PrivacyClaim:
    """The claim of a finished Opacus run: ``engine.get_epsilon(delta)`` (or the history
    re-accounted with ``accountant``), or ``claimed_epsilon`` with the engine's as an
    alternative claim."""
    from opacus.accountants import create_accountant

    history = _history(engine)
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
        label="Opacus accountant, as run")
    if claimed_epsilon is None:
        return own
    return PrivacyClaim(
        has_dp=True,
        statement=(f"reported by the user: ({claimed_epsilon:.4g}, {delta:g})-DP for one training "
                   f"example; the run's own Opacus accounting ({desc}) gives {eps:.4g}."),
        epsilon=float(claimed_epsilon), delta=float(delta), unit=UNIT, trust_model=TrustModel.CENTRAL,
        compositions=steps, accountant="user-reported", mechanism=own.mechanism,
        label="reported", alternatives=(own,))


# --------------------------------------------------------------------------- white box


class GradientCanaryTap:
    """Dirac gradient canaries through a DPOptimizer, and the adversary's view of them.

    Wraps the optimizer's ``clip_and_accumulate`` (records the clipped sum of the real
    examples, then appends the rows of the canaries sampled this step to ``p.grad_sample``)
    and ``pre_step`` (reads the privatized gradient on the canary coordinates, minus the
    real examples' clipped sum, and the noise level on the other coordinates).

    Args:
        optimizer: The DPOptimizer.
        coords: Flat parameter coordinates of the canaries (over ``optimizer.params``).
        included: Which canaries are in the data (bool, one per coordinate).
        sample_rate: Poisson rate of each included canary per step.
        generator: Randomness of the canaries' sampling.
    """

    def __init__(self, optimizer: Any, coords: np.ndarray, included: np.ndarray, sample_rate: float,
                 generator: torch.Generator) -> None:
        if type(optimizer).__name__.endswith("FastGradientClipping"):
            raise invalid("make", _OWNER, "a callable whose DPOptimizer keeps per-sample gradients "
                          "(grad_sample_mode 'hooks', 'functorch' or 'ew'; ghost clipping has none)",
                          type(optimizer).__name__)
        self.opt = optimizer
        self.params = list(optimizer.params)
        sizes = np.array([p.numel() for p in self.params])
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.dim = int(offsets[-1])
        self.coords = np.asarray(coords, dtype=np.int64)
        if self.coords.size and (self.coords.max() >= self.dim or len(set(self.coords.tolist())) != len(self.coords)):
            raise invalid("canaries", _OWNER, f"distinct coordinates below the model's {self.dim} parameters",
                          len(self.coords))
        self.which = np.searchsorted(offsets, self.coords, side="right") - 1  # parameter of each canary
        self.local = self.coords - offsets[self.which]
        self.included = np.asarray(included, dtype=bool)
        self.q = float(sample_rate)
        self.gen = generator
        free = np.ones(self.dim, dtype=bool)
        free[self.coords] = False
        self.free = [torch.as_tensor(free[offsets[i]:offsets[i + 1]]) for i in range(len(self.params))]
        per_layer = getattr(optimizer, "max_grad_norms", None)
        self.per_layer = list(per_layer) if per_layer is not None else None
        self.x: list[np.ndarray] = []  # per step: canary coordinates minus the real clipped sum
        self.noise: list[float] = []  # per step: noise std on the canary-free coordinates
        self.units: list[np.ndarray] = []  # per step: each canary's clipped norm
        self.sampled = np.zeros(len(self.coords), dtype=np.int64)
        self.steps = 0
        self._real: list[torch.Tensor] | None = None
        # the methods in place now (an override in the user's script included) are wrapped
        self._saved = {name: optimizer.__dict__.get(name) for name in ("clip_and_accumulate", "pre_step")}
        self._orig_clip = optimizer.clip_and_accumulate
        self._orig_pre = optimizer.pre_step
        optimizer.clip_and_accumulate = self._clip_and_accumulate
        optimizer.pre_step = self._pre_step

    def detach(self) -> None:
        """Restore the optimizer's methods as they were before."""
        for name, saved in self._saved.items():
            if saved is None:
                self.opt.__dict__.pop(name, None)
            else:
                self.opt.__dict__[name] = saved

    def _clip_norms(self) -> list[float]:
        if self.per_layer is not None:
            return [float(c) for c in self.per_layer]
        return [float(self.opt.max_grad_norm)] * len(self.params)

    def _clip_and_accumulate(self, *args: Any, **kwargs: Any) -> Any:
        opt = self.opt
        rows = [opt._get_flat_grad_sample(p) for p in self.params]
        n = len(rows[0])
        with torch.no_grad():
            if n == 0:
                real = [torch.zeros_like(p, dtype=torch.float64) for p in self.params]
            elif self.per_layer is not None:  # DPPerLayerOptimizer: each parameter clipped alone
                real = []
                for g, c, p in zip(rows, self.per_layer, self.params):
                    g = g.to(p.dtype)
                    f = (c / (g.reshape(n, -1).norm(2, dim=-1) + 1e-6)).clamp(max=1.0)
                    real.append(torch.einsum("i,i...", f, g).double())
            else:  # Opacus's flat clipping formula
                norms = torch.stack([g.reshape(n, -1).norm(2, dim=-1) for g in rows], dim=1).norm(2, dim=1)
                f = (float(opt.max_grad_norm) / (norms + 1e-6)).clamp(max=1.0)
                real = [torch.einsum("i,i...", f.to(p.dtype), g.to(p.dtype)).double() for g, p in zip(rows, self.params)]
            self._real = real if self._real is None else [a + b for a, b in zip(self._real, real)]
            if not opt._check_skip_next_step(pop_next=False) and len(self.coords):
                coins = torch.rand(len(self.coords), generator=self.gen).numpy() < self.q
                hit = np.flatnonzero(coins & self.included)
                self.sampled[hit] += 1
                if hit.size:
                    self._inject(hit)
        return self._orig_clip(*args, **kwargs)

    def _inject(self, hit: np.ndarray) -> None:
        norms = self._clip_norms()
        k = len(hit)
        for pi, p in enumerate(self.params):
            gs = p.grad_sample
            last = gs[-1] if isinstance(gs, list) else gs
            canary = torch.zeros((k,) + tuple(last.shape[1:]), dtype=last.dtype, device=last.device)
            mine = np.flatnonzero(self.which[hit] == pi)
            if mine.size:
                flat = canary.view(k, -1)
                flat[torch.as_tensor(mine), torch.as_tensor(self.local[hit[mine]])] = CANARY_SCALE * norms[pi]
            grown = torch.cat([last, canary], dim=0)
            if isinstance(gs, list):
                gs[-1] = grown
            else:
                p.grad_sample = grown

    def _pre_step(self, *args: Any, **kwargs: Any) -> Any:
        opt = self.opt
        scale = 1.0
        if getattr(opt, "loss_reduction", "mean") == "mean":
            scale = float(opt.expected_batch_size) * float(opt.accumulated_iterations)
        out = self._orig_pre(*args, **kwargs)
        if out is False or self._real is None:  # a skipped (accumulation) step keeps the sum
            return out
        with torch.no_grad():
            values = np.zeros(len(self.coords))
            sq, count = 0.0, 0
            for pi, (p, real) in enumerate(zip(self.params, self._real)):
                if p.grad is None:
                    continue
                resid = (p.grad.detach().double().reshape(-1) * scale - real.reshape(-1).to(p.grad.device)).cpu()
                mine = np.flatnonzero(self.which == pi)
                values[mine] = resid[torch.as_tensor(self.local[mine])].numpy()
                free = resid[self.free[pi]]
                sq += float((free ** 2).sum())
                count += free.numel()
        norms = np.asarray(self._clip_norms())
        self.x.append(values)
        self.noise.append(math.sqrt(sq / count) if count else 0.0)
        self.units.append(norms[self.which] if len(self.coords) else np.zeros(0))
        self.steps += 1
        self._real = None
        return out

    def scores(self) -> np.ndarray:
        """Each canary's log-likelihood ratio of "in" against "out" over the steps: the
        Poisson mixture of N(1, s^2) and N(0, s^2) in units of the canary's clipped norm,
        s the measured noise level."""
        if not self.steps:
            raise InvalidParameterError(
                "The 'make' parameter of audit_opacus must return the optimizer the training "
                "steps: the DPOptimizer it returned never stepped. Got no optimizer step instead.")
        q = min(max(self.q, 1e-12), 1.0)
        log_out = math.log1p(-q) if q < 1.0 else -math.inf
        total = np.zeros(len(self.coords))
        for x, s, unit in zip(self.x, self.noise, self.units):
            u = np.maximum(unit, 1e-30)
            var = max(s * s, 1e-24) / u ** 2  # noise variance in units of the clipped canary
            a = math.log(q) + (x / u - 0.5) / var
            total += np.logaddexp(log_out, a)
        return total

    def measured_noise_multiplier(self) -> float:
        """The noise std measured on the canary-free coordinates, over the clip norm (the
        noise multiplier the mechanism really applied, averaged over steps)."""
        c = float(self.opt.max_grad_norm)
        return float(np.mean(self.noise) / c) if self.noise and c > 0 else float("nan")


def _run_info(training: OpacusTraining, tap: GradientCanaryTap | None, q: float) -> dict:
    opt = training.optimizer
    history = _history(training.privacy_engine)
    info = {
        "noise_multiplier": float(opt.noise_multiplier),
        "max_grad_norm": float(opt.max_grad_norm),
        "sample_rate": float(q),
        "steps": int(sum(n for _, _, n in history)),
        "expected_batch_size": float(opt.expected_batch_size or 0),
        "loss_reduction": str(opt.loss_reduction),
        "clipping": "per_layer" if getattr(opt, "max_grad_norms", None) is not None else "flat",
        "secure_mode": bool(getattr(opt, "secure_mode", False)),
        "dataset_size": len(training.data_loader.dataset),
        "parameters": int(sum(p.numel() for p in opt.params)),
        "model_class": type(getattr(training.model, "_module", training.model)).__name__,
        "accountant_history": [list(h) for h in history],
    }
    if tap is not None:
        info["optimizer_steps_observed"] = tap.steps
        info["noise_multiplier_measured"] = tap.measured_noise_multiplier()
    return info


def white_box_one_run(run: OpacusRun, *, canaries: int | None = None, seed: int = 0
                      ) -> tuple[EmpiricalEpsilon, PrivacyClaim, dict]:
    """One training run with ``canaries`` Dirac gradient canaries (each in with probability
    1/2; default 1000, or half the model's parameter coordinates if fewer): the one-run
    lower bound (95%), the run's claim and diagnostics."""
    if canaries is not None:
        canaries = check_interval("canaries", _OWNER, canaries, kind=int, low=20)
    holder: dict[str, Any] = {}

    def tap(opt: Any, q: float) -> GradientCanaryTap:
        dim = sum(p.numel() for p in opt.params)
        m = canaries if canaries is not None else min(DEFAULT_CANARIES, dim // 2)
        if 2 * m > dim or m < 20:
            raise invalid("canaries", _OWNER, f"between 20 and half the model's {dim} parameter "
                          f"coordinates (<= {dim // 2})", m)
        included = np.random.default_rng(seed).random(m) < 0.5
        coords = np.random.default_rng(seed + 1).choice(dim, size=m, replace=False)
        holder["included"] = included
        holder["tap"] = GradientCanaryTap(opt, coords, included, q, torch.Generator().manual_seed(seed + 2))
        return holder["tap"]

    training, _ = _train(run, run.train_data, seed, tap)
    t, included = holder["tap"], holder["included"]
    canaries = len(included)
    scores = t.scores()
    ks = [(k, 0) for k in (10, 30, 100, 300)] + [(k, k) for k in (10, 30, 100, 300)]
    ks = [k for k in ks if sum(k) <= canaries]
    claim = opacus_claim(training.privacy_engine, run.delta, accountant=run.accountant,
                         claimed_epsilon=run.claimed_epsilon)
    est = best_one_run_epsilon(scores, included, delta=float(claim.delta), beta=0.05, ks=ks)
    diag = {"canary": "dirac-gradient", "canary_gradient_norm": f"{CANARY_SCALE:g} x max_grad_norm",
            "observation": "each privatized gradient", "included": int(included.sum()),
            "included_never_sampled": int(((t.sampled == 0) & included).sum()),
            "mean_score_in": float(scores[included].mean()) if included.any() else None,
            "mean_score_out": float(scores[~included].mean()) if (~included).any() else None}
    est = EmpiricalEpsilon("one-run", est.epsilon, est.delta, est.nature, est.confidence, est.trials,
                           est.compute_s, {**est.details, **diag})
    return est, claim, _run_info(training, t, t.q)


def white_box_cp(run: OpacusRun, *, trials: int = 500, seed: int = 0
                 ) -> tuple[EmpiricalEpsilon, PrivacyClaim, dict]:
    """``trials`` training runs with one Dirac gradient canary in the data and ``trials``
    without; the Clopper-Pearson lower bound (95%) on the canary's score."""
    trials = check_interval("trials", _OWNER, trials, kind=int, low=10)
    with_, without = [], []
    claim, info = None, None
    coord = None
    for i in range(2 * trials):
        present = i % 2 == 0
        holder: dict[str, GradientCanaryTap] = {}

        def tap(opt: Any, q: float, present: bool = present, i: int = i) -> GradientCanaryTap:
            nonlocal coord
            if coord is None:
                coord = int(np.random.default_rng(seed + 1).integers(sum(p.numel() for p in opt.params)))
            holder["tap"] = GradientCanaryTap(opt, np.array([coord]), np.array([present]), q,
                                              torch.Generator().manual_seed(seed + 7919 * (i + 1)))
            return holder["tap"]

        training, _ = _train(run, run.train_data, seed + i, tap)
        (with_ if present else without).append(float(holder["tap"].scores()[0]))
        if claim is None:
            claim = opacus_claim(training.privacy_engine, run.delta, accountant=run.accountant,
                                 claimed_epsilon=run.claimed_epsilon)
            info = _run_info(training, holder["tap"], holder["tap"].q)
        elif _history(training.privacy_engine) != [tuple(h) for h in info["accountant_history"]]:
            raise InvalidParameterError(
                "The 'make' parameter of audit_opacus must build the same private training on every "
                "call (the 'cp' estimator repeats it): the accountant's history changed between runs. "
                f"Got {_history(training.privacy_engine)} instead of {info['accountant_history']}.")
    est = clopper_pearson_epsilon(np.array(with_), np.array(without), delta=float(claim.delta),
                                  alpha=0.05, seed=seed)
    est = EmpiricalEpsilon(est.estimator, est.epsilon, est.delta, est.nature, est.confidence, est.trials,
                           est.compute_s, {**est.details, "canary": "dirac-gradient",
                                           "observation": "each privatized gradient",
                                           "training_runs": 2 * trials})
    return est, claim, info


# --------------------------------------------------------------------------- black box


def _label(y: Any) -> int:
    return int(y.item() if isinstance(y, torch.Tensor) else y)


class _Relabelled(Dataset):
    """Items of ``base`` at ``indices`` with new labels (kept in the base's label type)."""

    def __init__(self, base: Dataset, indices: Sequence[int], labels: Sequence[int]) -> None:
        self.base, self.indices, self.labels = base, list(indices), list(labels)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        x, y = self.base[self.indices[i]]
        new = self.labels[i]
        return x, (torch.as_tensor(new, dtype=y.dtype) if isinstance(y, torch.Tensor) else new)


def _labels(data: Dataset) -> np.ndarray:
    tensors = getattr(data, "tensors", None)
    if tensors is not None and len(tensors) >= 2:
        return tensors[1].reshape(-1).cpu().numpy().astype(np.int64)
    return np.array([_label(data[i][1]) for i in range(len(data))], dtype=np.int64)


def _canary_losses(run: OpacusRun, model: nn.Module, pool: np.ndarray, planted: np.ndarray) -> np.ndarray:
    device = next(model.parameters()).device
    model.eval()
    losses = []
    with torch.no_grad():
        for idx, lab in zip(pool.tolist(), planted.tolist()):
            x, y = run.train_data[idx]
            out = model(torch.as_tensor(x)[None].to(device))
            target = torch.as_tensor([lab], dtype=y.dtype if isinstance(y, torch.Tensor) else torch.long).to(device)
            losses.append(float(run.loss_fn(out, target)))
    return np.array(losses)


def black_box_input_one_run(run: OpacusRun, *, canaries: int = 200, seed: int = 0, calibrate: bool = True
                            ) -> tuple[EmpiricalEpsilon, PrivacyClaim, dict]:
    """A fresh run with ``canaries`` mislabelled examples of ``train_data``, each in with
    probability 1/2, scored by their loss on the final model (minus their loss on a
    reference model trained without any canary, with ``calibrate``): the black-box one-run
    lower bound (95%), that run's claim and diagnostics."""
    canaries = check_interval("input_canaries", _OWNER, canaries, kind=int, low=20)
    n = len(run.train_data)
    if canaries > n // 2:
        raise invalid("input_canaries", _OWNER, f"at most half the training examples (<= {n // 2})", canaries)
    rng = np.random.default_rng(seed)
    labels = _labels(run.train_data)
    k_classes = run.num_classes or int(labels.max()) + 1
    if k_classes < 2:
        raise invalid("train_data", _OWNER, "a dataset with at least 2 classes", f"{k_classes} class")
    order = rng.permutation(n)
    pool, keep = order[:canaries], np.sort(order[canaries:])
    planted = (labels[pool] + rng.integers(1, k_classes, size=canaries)) % k_classes
    included = rng.random(canaries) < 0.5
    data = ConcatDataset([Subset(run.train_data, keep.tolist()),
                          _Relabelled(run.train_data, pool[included].tolist(), planted[included].tolist())])
    training, _ = _train(run, data, seed)
    loss = _canary_losses(run, training.model, pool, planted)
    reference = None
    if calibrate:  # a run without any canary: how hard each wrong label is anyway
        ref_training, _ = _train(run, Subset(run.train_data, keep.tolist()), seed + 104729)
        reference = _canary_losses(run, ref_training.model, pool, planted)
    scores = -loss if reference is None else reference - loss
    ks = [k for k in (5, 10, 20, 50) if 2 * k <= canaries]
    claim = opacus_claim(training.privacy_engine, run.delta, accountant=run.accountant,
                         claimed_epsilon=run.claimed_epsilon)
    est = best_one_run_epsilon(scores, included, delta=float(claim.delta), beta=0.05, ks=ks)
    diag = {"canary": "mislabelled input", "observation": "the final model's loss",
            "included": int(included.sum()), "calibrated_by_reference_run": bool(calibrate),
            "loss_gap_out_minus_in": float(loss[~included].mean() - loss[included].mean())}
    est = EmpiricalEpsilon("one-run-input", est.epsilon, est.delta, est.nature, est.confidence, est.trials,
                           est.compute_s, {**est.details, **diag})
    return est, claim, _run_info(training, None, 1.0 / len(training.data_loader))


# --------------------------------------------------------------------------- findings


WHITE_BOX_THREAT = {
    "name": "dp-sgd-gradient-observer",
    "adversary": "anyone who sees every privatized gradient (each intermediate model)",
    "observes": "each step's privatized gradient, as the DPOptimizer hands it to the base optimizer",
    "knows": ["model architecture", "the DP-SGD parameters (clip norm, noise multiplier, sample rate)",
              "the other training examples and which of them each step sampled",
              "can insert a gradient canary (an example with a chosen per-sample gradient)"],
    "description": ("The adversary of Nasr et al. 2021/2023's white-box audits of DP-SGD: it inserts "
                    "gradient canaries and reads each privatized gradient. DP-SGD's claim holds "
                    "against it (every step is a released Gaussian mechanism)."),
}
BLACK_BOX_THREAT = {
    "name": "model-analyst",
    "adversary": "analyst of the released model",
    "observes": "the final model (its loss on chosen inputs)",
    "knows": ["model architecture", "the training procedure", "the canary examples and their labels"],
    "description": ("Anyone holding the final model: it inserts mislabelled examples into the training "
                    "data and later reads their loss (black-box, final model only)."),
}


def _finding(run: OpacusRun, estimator: str, est: EmpiricalEpsilon, claim: PrivacyClaim, info: dict,
             params: dict, seed: int, runtime: float) -> dict:
    result = verdict(claim, est)
    alternatives = []
    for alt in claim.alternatives:
        v = verdict(alt, est)
        alternatives.append({"label": alt.label or "alternative", "epsilon_claim": alt.epsilon,
                             "delta": alt.delta, "unit": alt.unit, "trust_model": "central",
                             "verdict": v.verdict, "reason": v.reason})
    white = estimator != "one-run-input"
    conf = f"{est.confidence:.0%} confidence" if est.confidence else "no confidence level"
    note = f"{est.nature} ({conf}); {result.verdict}: {result.reason}. {NOT_A_PROOF}"
    defense_params = {k: v for k, v in info.items() if k not in ("model_class", "dataset_size", "parameters")
                      and isinstance(v, (str, bool, int, float)) and not (isinstance(v, float) and not math.isfinite(v))}
    defense_params["accountant"] = claim.accountant
    metrics = [{
        "name": "epsilon_emp", "unit": "", "direction": "higher-leaks-more",
        "mean": est.epsilon, "worst": est.epsilon, "per_item": [est.epsilon],
        "baseline": {"description": f"claimed epsilon ({claim.accountant})",
                     "mean": claim.epsilon, "worst": claim.epsilon},
        "note": note,
    }]
    measured = info.get("noise_multiplier_measured")
    if measured is not None and math.isfinite(measured):
        metrics.append({
            "name": "noise multiplier (measured)", "unit": "", "direction": "lower-leaks-more",
            "mean": measured, "worst": measured, "per_item": [measured],
            "baseline": {"description": "the optimizer's noise_multiplier (what Opacus accounts)",
                         "mean": info["noise_multiplier"], "worst": info["noise_multiplier"]},
            "note": ("std of the privatized gradient minus the other examples' clipped sum, on the "
                     "coordinates without canaries, over max_grad_norm, averaged over steps"),
        })
    return {
        "id": f"{DEFENSE_NAME}:epsilon-{estimator}",
        "title": f"empirical epsilon ({estimator}) against Opacus DP-SGD: {result.verdict}",
        "defense": {"name": DEFENSE_NAME, "params": defense_params},
        "claim": claim.to_dict(),
        "threat_model": WHITE_BOX_THREAT if white else BLACK_BOX_THREAT,
        "attack": {"name": f"epsilon-{estimator}", "family": "dp-audit", "params": {**params, "seed": seed}},
        "setting": {
            "dataset": run.dataset_name, "model": run.model_name or info["model_class"],
            "model_params": dict(run.model_params), "training": dict(run.training_params),
            "batch_size": int(round(info["expected_batch_size"])),
            "num_targets": int(est.trials if estimator != "cp" else 1),
            "local_steps": int(info["steps"]), "rounds": 1, "clients": 1,
            "epochs": run.epochs, "sample_rate": info["sample_rate"],
            "dataset_size": info["dataset_size"], "parameters": info["parameters"],
        },
        "metrics": metrics,
        "images": None,
        "privacy_audit": {
            "verdict": result.verdict, "epsilon_claim": claim.epsilon, "delta": claim.delta,
            "unit": claim.unit, "estimate": est.to_dict(), "reason": result.reason,
            "statement": NOT_A_PROOF,
            **({"alternatives": alternatives} if alternatives else {}),
        },
        "runtime_s": runtime,
    }


def audit_opacus(run: OpacusRun, estimators: Sequence[str] = ("one-run",), *, seed: int = 0,
                 canaries: int | None = None, trials: int = 500, input_canaries: int = 200) -> list[dict]:
    """Empirical epsilon of ``run`` beside its claim, one report finding per estimator.

    Args:
        run: Your Opacus training (:class:`OpacusRun`).
        estimators: Among "one-run" (white-box gradient canaries, one training run),
            "cp" (white-box, 2 x ``trials`` training runs), "one-run-input" (black-box
            input canaries, one training run).
        seed: Seed of the canaries and of the runs (``make`` gets it).
        canaries: Gradient canaries of "one-run" (>= 20, at most half the parameter
            coordinates; default 1000 or half the coordinates, whichever is smaller).
        trials: Runs per side of "cp" (>= 10).
        input_canaries: Mislabelled examples of "one-run-input" (>= 20, at most half the data).

    Returns:
        Findings in the report format (``reports.schema``), each with ``privacy_audit``
        (verdict, epsilon_claim, estimate) and the metric ``epsilon_emp`` beside the claim.
    """
    if not isinstance(run, OpacusRun):
        raise invalid("run", _OWNER, "an OpacusRun", type(run).__name__)
    if isinstance(estimators, str):
        estimators = (estimators,)
    if not estimators:
        raise invalid("estimators", _OWNER, "a non-empty list of estimator names", list(estimators))
    for e in estimators:
        check_options("estimators", _OWNER, e, ESTIMATORS)
    seed = check_interval("seed", _OWNER, seed, kind=int, low=0)
    findings = []
    for name in dict.fromkeys(estimators):
        start = time.perf_counter()
        if name == "one-run":
            est, claim, info = white_box_one_run(run, canaries=canaries, seed=seed)
            params = {"canaries": est.trials}
        elif name == "cp":
            est, claim, info = white_box_cp(run, trials=trials, seed=seed)
            params = {"trials": trials}
        else:
            est, claim, info = black_box_input_one_run(run, canaries=input_canaries, seed=seed)
            params = {"canaries": input_canaries}
        findings.append(_finding(run, name, est, claim, info, params, seed, time.perf_counter() - start))
    return findings


# --------------------------------------------------------------------------- reports


def opacus_findings_report(findings: list[dict], out_dir: str | Path | None = None, *,
                           title: str = "Opacus DP-SGD audit: empirical epsilon beside the claim",
                           command: str = "audit.opacus_audit.audit_opacus", seed: int = 0,
                           notes: Sequence[str] = (), device: str = "cpu", threads: int | None = None,
                           runtime_s: float | None = None) -> dict:
    """The validated report dict of ``findings`` (:func:`audit.report_assembly.assemble_report`),
    written as ``report.json`` + ``report.html`` into ``out_dir`` when given."""
    from audit.environment import environment_info
    from audit.report_assembly import assemble_report, write_report

    report = assemble_report(
        list(findings), title=title, command=command, seed=int(seed),
        environment=environment_info(device=device, threads=int(threads or torch.get_num_threads())),
        notes=[NOT_A_PROOF, *notes],
        runtime_s=float(runtime_s if runtime_s is not None else sum(f["runtime_s"] for f in findings)))
    if out_dir is not None:
        write_report(out_dir, report)
    return report


# --------------------------------------------------------------------------- CLI helpers


def builtin_run(*, dataset: str = "digits", model: str = "mlp", model_params: dict | None = None,
                noise_multiplier: float = 1.0, max_grad_norm: float = 1.0, batch_size: int = 64,
                epochs: int = 1, lr: float = 0.5, delta: float = 1e-5, accountant: str = "rdp",
                claimed_epsilon: float | None = None, limit: int | None = None,
                device: str = "cpu") -> OpacusRun:
    """An :class:`OpacusRun` on an embedded dataset and model (for the CLI and the tests):
    SGD at ``lr``, ``make_private`` with ``noise_multiplier`` and ``max_grad_norm``,
    Poisson batches of expected size ``batch_size``, ``PrivacyEngine(accountant=...)``."""
    from torch.utils.data import DataLoader, TensorDataset

    from audit.datasets import create_dataset
    from audit.models import create_model

    owner = "builtin_run"
    noise_multiplier = check_interval("noise_multiplier", owner, noise_multiplier, low=0, closed="neither")
    max_grad_norm = check_interval("max_grad_norm", owner, max_grad_norm, low=0, closed="neither")
    batch_size = check_interval("batch_size", owner, batch_size, kind=int, low=1)
    lr = check_interval("lr", owner, lr, low=0, closed="neither")
    accountant = check_options("accountant", owner, accountant, ACCOUNTANTS)
    data = create_dataset(dataset, **({"limit": limit} if limit is not None else {}))
    if data.task != "classification":
        raise invalid("dataset", owner, "a classification dataset", dataset)
    mparams = dict(model_params) if model_params else ({"hidden": 32} if model == "mlp" else {})

    def make(train_data: Dataset, seed: int):
        from opacus import PrivacyEngine

        torch.manual_seed(seed)
        net = create_model(model, input_shape=data.input_shape, num_classes=data.num_classes,
                           channel_mean=data.channel_mean, channel_std=data.channel_std, **mparams).to(device)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        loader = DataLoader(train_data, batch_size=batch_size)
        engine = PrivacyEngine(accountant=accountant)
        net, opt, loader = engine.make_private(module=net, optimizer=opt, data_loader=loader,
                                               noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm)
        return net, opt, loader, engine

    return OpacusRun(make=make, train_data=TensorDataset(data.images, data.labels), delta=delta, epochs=epochs,
                     claimed_epsilon=claimed_epsilon, num_classes=data.num_classes, dataset_name=dataset,
                     model_name=model, model_params=mparams,
                     training_params={"optimizer": "SGD", "lr": lr, "batch_size": batch_size,
                                      "epochs": epochs, "noise_multiplier": noise_multiplier,
                                      "max_grad_norm": max_grad_norm, "accountant": accountant})


def load_run(spec: str) -> OpacusRun:
    """The :class:`OpacusRun` named by ``"path/to/file.py:name"``: ``name`` is an OpacusRun
    or a function of no arguments returning one (for ``fedaudit opacus --run``)."""
    path, _, attr = str(spec).rpartition(":")
    if not path or not attr or not Path(path).is_file():
        raise invalid("run", "fedaudit opacus", "'path/to/file.py:name' naming an existing file", spec)
    mod_name = f"_fedaudit_opacus_run_{abs(hash(path))}"
    spec_obj = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec_obj)
    sys.modules[mod_name] = module
    spec_obj.loader.exec_module(module)
    obj = getattr(module, attr, None)
    if callable(obj) and not isinstance(obj, OpacusRun):
        obj = obj()
    if not isinstance(obj, OpacusRun):
        raise invalid("run", "fedaudit opacus", f"a name in {path} giving an OpacusRun", spec)
    return obj


__all__ = [
    "ACCOUNTANTS", "CANARY_SCALE", "DEFENSE_NAME", "ESTIMATORS", "GradientCanaryTap", "OpacusRun",
    "OpacusTraining", "UNIT", "audit_opacus", "black_box_input_one_run", "builtin_run", "load_run",
    "opacus_claim", "opacus_epsilon", "opacus_findings_report", "white_box_cp", "white_box_one_run",
]
