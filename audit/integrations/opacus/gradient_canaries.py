"""White-box gradient canaries through Opacus's DPOptimizer, and the adversary's view of them.

Dirac **gradient canaries** (Nasr et al. 2021, 2023): a canary is a parameter coordinate.
At every optimizer step each "in" canary is Poisson-sampled with the step's sample rate q
(``1 / len(data_loader)``, what ``make_private`` accounts), and when sampled its
per-sample gradient -- :data:`CANARY_SCALE` C on its coordinate, zero elsewhere, so
clipping always binds -- is **appended to Opacus's per-sample gradients**
(``p.grad_sample``) just before the DPOptimizer clips, sums, noises and scales them. The
canaries thus go through your optimizer's own ``clip_and_accumulate`` / ``add_noise`` /
``scale_grad`` (and any override of them in your script).

The adversary sees each privatized gradient (what the DPOptimizer hands the base
optimizer; for plain SGD the parameter update), knows the rest of the training data and
which of those examples each step sampled (the DP guarantee holds against it: their
sampling is independent of the canary), so it subtracts their clipped sum (Opacus's
clipping formula with the optimizer's ``max_grad_norm``). What is left on a canary's
coordinate, in units of its clipped norm, is x_t = 1[sampled] + sigma z_t for a correct
mechanism; the score is the log-likelihood ratio of the Poisson mixture,
sum_t log(1 - q + q exp((x_t - 1/2) / s^2)), s the noise level measured on the
coordinates without canaries (so a noise bug does not blind the score; it is reported as
"noise multiplier (measured)").

Requirements and limits: per-sample gradients (``grad_sample_mode`` "hooks", "functorch"
or "ew"; flat or per-layer clipping); ghost clipping keeps no per-sample gradients and is
refused. Gradient canaries are sampled at the rate Opacus accounts, so a data loader that
does not really Poisson-sample is not caught by them (the black-box canaries of
:mod:`audit.integrations.opacus.black_box` go through your data loader). The observation
is the privatized gradient before the base optimizer: a leak added after it (e.g. a
non-private gradient mixed into the update) is seen only by the black-box canaries.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from audit.core.errors import InvalidParameterError, invalid
from audit.integrations.opacus.run import AUDIT_OWNER

#: canary gradient = CANARY_SCALE x max_grad_norm on one coordinate: clipping always binds
CANARY_SCALE = 1000.0


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
            raise invalid("make", AUDIT_OWNER, "a callable whose DPOptimizer keeps per-sample gradients "
                          "(grad_sample_mode 'hooks', 'functorch' or 'ew'; ghost clipping has none)",
                          type(optimizer).__name__)
        self.opt = optimizer
        self.params = list(optimizer.params)
        sizes = np.array([p.numel() for p in self.params])
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.dim = int(offsets[-1])
        self.coords = np.asarray(coords, dtype=np.int64)
        if self.coords.size and (self.coords.max() >= self.dim or len(set(self.coords.tolist())) != len(self.coords)):
            raise invalid("canaries", AUDIT_OWNER, f"distinct coordinates below the model's {self.dim} parameters",
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


__all__ = ["CANARY_SCALE", "GradientCanaryTap"]
