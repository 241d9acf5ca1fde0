"""Inverting Gradients (Geiping, Bauermeister, Droege, Moeller 2020, "Inverting Gradients -
How easy is it to break privacy in federated learning?", NeurIPS).

Minimise ``1 - cos(update(x), observed) + tv_weight * TV(x)`` over candidate images x
with Adam on the *signed* gradient, a step decay of the learning rate by 10x at 3/8, 5/8 and
7/8 of the iterations, and x boxed to the valid pixel range [0, 1] after every step. R
random restarts run as **one batched optimisation** (``torch.func.vmap`` over restarts);
the restart with the smallest gradient distance (without TV) is kept.

Threat model: honest-but-curious server (or anyone holding the observation) that knows the
architecture, the broadcast weights and the local training schedule; labels are known only
when the threat model grants them, otherwise recovered by iDLG/LLG first.

Choices (cheaper than the paper's 24k iterations and 8 restarts, documented defaults):
``iterations=1000``, ``restarts=2``, ``lr=0.03`` in [0, 1] pixel units (the paper's 0.1 is
in normalised units, std ~ 0.25), ``tv_weight=0.01`` (the paper's 0.2 likewise scaled to
our loss, a mean not a sum), uniform random init in [0, 1]. For a model delta of E local
steps the unrolled E-step update is matched (the paper's FedAvg variant), with the
clients' own local training (minibatches, optimizer, module mode; :mod:`audit.fl.local_steps`).
``assumed_model_mode`` (``train``/``eval``) replaces the adversary's knowledge of the
clients' module mode with an assumption, to measure what a wrong assumption costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.func import grad, vmap

from attacks.gradient_matching import (
    assumed_training,
    attack_copy,
    check_assumed_mode,
    cosine_distance,
    make_update_fn,
    observed_tensors,
    signed_adam_descent,
    total_variation,
)
from attacks.label_recovery import recover_labels
from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.updates import UpdateKind
from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_known_keys, check_nonnegative, check_positive


class InvertingGradients(Attack):
    """Cosine gradient matching + TV with signed Adam and batched restarts."""

    name = "inverting-gradients"
    family = "gradient-inversion"

    def __init__(
        self,
        *,
        iterations: int = 1000,
        restarts: int = 2,
        lr: float = 0.03,
        tv_weight: float = 0.01,
        assumed_model_mode: str | None = None,
        target_batch: int = 8,
        compile: bool = False,
    ) -> None:
        if not isinstance(compile, bool):
            raise InvalidParameterError(
                f"The 'compile' parameter of {self.name} must be true or false. Got {compile!r} instead.")
        self.compile = compile
        self.target_batch = check_interval("target_batch", self.name, target_batch, kind=int, low=1, high=4096)
        self.iterations = check_interval("iterations", self.name, iterations, kind=int, low=1)
        self.restarts = check_interval("restarts", self.name, restarts, kind=int, low=1)
        self.lr = check_positive("lr", self.name, lr)
        self.assumed_model_mode = check_assumed_mode(assumed_model_mode, self.name)
        self.tv_weight = check_nonnegative("tv_weight", self.name, tv_weight)

    @classmethod
    def from_params(cls, **params: Any) -> "InvertingGradients":
        """Build from user parameters (iterations, restarts, lr, tv_weight)."""
        check_known_keys(params, ("iterations", "restarts", "lr", "tv_weight", "assumed_model_mode",
                                   "target_batch", "compile"), cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "restarts": self.restarts,
            "lr": self.lr,
            "tv_weight": self.tv_weight,
            "target_batch": self.target_batch,
            "compile": self.compile,
            **({"assumed_model_mode": self.assumed_model_mode} if self.assumed_model_mode else {}),
        }

    def matching_loss(self, view: AttackView, observed) -> Callable[[Any, Any], torch.Tensor]:
        """The gradient-matching loss (candidate update, observed update) -> scalar: here
        ``1 - cos`` over all tensors together. Adaptive attacks override it."""
        return cosine_distance

    def run(
        self,
        view: AttackView,
        *,
        generator: torch.Generator,
        device: torch.device,
        progress: bool = False,
    ) -> AttackResult:
        return self.run_targets([view], generators=[generator], device=device, progress=progress)[0]

    def run_targets(self, views: Sequence[AttackView], *, generators: Sequence[torch.Generator],
                    device: torch.device, progress: bool = False) -> list[AttackResult]:
        """Attack several targets: those that share the broadcast model, the local training
        and the shapes run ``target_batch`` at a time as one optimisation (vmapped over
        targets and restarts; Adam acts element by element, so each target follows the
        same steps as alone). Each target draws its labels and start from its own
        generator, as :meth:`run` does."""
        results: list[AttackResult | None] = [None] * len(views)
        for group in batch_groups(views, self.target_batch if self._batchable() else 1):
            for i, result in zip(group, self._optimise([views[i] for i in group],
                                                       [generators[i] for i in group], device, progress)):
                results[i] = result
        return results  # type: ignore[return-value]

    def _batchable(self) -> bool:
        # an adaptive loss may depend on each target's observation beyond the cosine
        return type(self).matching_loss is InvertingGradients.matching_loss

    def _optimise(self, views: list[AttackView], generators: list[torch.Generator],
                  device: torch.device, progress: bool) -> list[AttackResult]:
        view = views[0]
        labels = torch.stack([recover_labels(v, generator=g) for v, g in zip(views, generators)]).to(device)
        training = assumed_training(view.local_training, self.assumed_model_mode)
        model, params = attack_copy(view.model, device, view.target.tensors, training)
        observed = {n: torch.stack([observed_tensors(v.target.tensors, params, device)[n] for v in views])
                    for n in params}
        update_fn = make_update_fn(model, training, client_id=view.target.client_id, round=view.target.round)
        match = self.matching_loss(view, {n: t[0] for n, t in observed.items()})

        def distance(x: torch.Tensor, obs, y: torch.Tensor) -> torch.Tensor:
            return match(update_fn(params, x, y), obs)

        def objective(x: torch.Tensor, obs, y: torch.Tensor) -> torch.Tensor:
            return distance(x, obs, y) + self.tv_weight * total_variation(x)

        shape = (self.restarts, view.batch_size, *view.input_shape)
        x = torch.stack([torch.rand(shape, generator=g) for g in generators]).to(device)
        # outer vmap: targets (their observation and labels); inner: restarts of a target
        batched_grad = vmap(vmap(grad(objective), in_dims=(0, None, None)))
        compiled = compiled_or_eager(batched_grad, (x, observed, labels)) if self.compile else None
        step_fn = compiled[0] if compiled else batched_grad
        x, step_cpu_s = signed_adam_descent(lambda z: step_fn(z, observed, labels), x, iterations=self.iterations,
                                            lr=self.lr, desc=self.name, progress=progress)
        with torch.no_grad():
            final = vmap(vmap(distance, in_dims=(0, None, None)))(x, observed, labels)
        results = []
        for t in range(len(views)):
            best = int(torch.argmin(final[t]))
            results.append(AttackResult(
                images=x[t, best].cpu(),
                labels=labels[t].cpu(),
                stats={
                    "gradient_distance": float(final[t, best]),
                    "best_restart": best,
                    "restart_distances": [float(v) for v in final[t]],
                    "targets_batched": len(views),
                    "step_cpu_s": step_cpu_s,  # CPU seconds per iteration after the first
                    **({"compiled": compiled[1]} if compiled else {}),
                },
            ))
        return results


def compiled_or_eager(fn: Callable, args: tuple) -> tuple[Callable, str]:
    """``torch.compile(fn)`` when it compiles and agrees with eager ``fn`` on ``args`` (every
    entry within 1e-4 of the largest magnitude: compiled kernels reorder float sums), else
    ``fn``; and what happened ("compiled", or why eager)."""
    try:
        fast = torch.compile(fn)
        got, want = fast(*args), fn(*args)
    except Exception as err:  # noqa: BLE001 - any compiler failure falls back to eager
        return fn, f"eager: torch.compile failed ({type(err).__name__})"
    if not torch.allclose(got, want, rtol=0.0, atol=1e-4 * float(want.abs().max()) + 1e-12):
        return fn, "eager: torch.compile disagreed with eager"
    return fast, "compiled"


def batch_groups(views: Sequence[AttackView], size: int) -> list[list[int]]:
    """Indices of ``views`` in groups of at most ``size`` that can share one optimisation:
    the same broadcast model, local training, batch size, input shape and observed tensor
    names and shapes, and (with minibatch local steps, whose order depends on the client)
    the same client and round. Order is kept within a group."""
    keyed: dict[tuple, list[int]] = {}
    for i, v in enumerate(views):
        per_client = v.local_training.kind is not UpdateKind.GRADIENT and v.local_training.batch_size is not None
        key = (id(v.model), v.local_training, v.batch_size, tuple(v.input_shape),
               tuple((n, tuple(t.shape)) for n, t in v.target.tensors.items()),
               (v.target.client_id, v.target.round) if per_client else v.target.round, v.labels is None)
        keyed.setdefault(key, []).append(i)
    return [idx[j:j + size] for idx in keyed.values() for j in range(0, len(idx), size)]
