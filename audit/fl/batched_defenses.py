"""Which defenses run with clients batched, and their client and server sides over stacked
updates (the leading dimension: the round's clients), for :mod:`audit.fl.vectorised_clients`.

FedAvg and FedSGD (McMahan et al. 2017, "Communication-efficient learning of deep networks
from decentralized data") aggregate by the example-weighted mean; DP-FedAvg (McMahan et al.
2018, "Learning differentially private recurrent language models") clips each client's
update to global L2 norm ``clip_norm`` and adds Gaussian noise, per client (``local``) or
once to the sum (``central``, divided by ``clients_per_round``). They are recognised by
their exact class path (:mod:`audit.fl` must not import :mod:`defenses`); any other defense
opts in with the :class:`BatchedDefense` methods. :func:`vectorisable` says whether a run
can take the batched path and, if not, why, in a sentence a report can state.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from audit.core.defense import Defense
from audit.core.errors import InvalidParameterError
from audit.core.updates import CROSS_ENTROPY, LocalTraining

__all__ = ["BatchedDefense", "batched_client_side", "batched_sides", "clip_l2_batched", "vectorisable"]

Tensors = dict[str, torch.Tensor]
_PLAIN = ("defenses.fedavg.FedAvg", "defenses.fedavg.FedSGD")
_DP = "defenses.dp_fedavg.DPFedAvg"
_HOOKS = ("setup_server", "setup_client", "client_model", "trainable")


@runtime_checkable
class BatchedDefense(Protocol):
    """A defense's two sides over stacked updates (leading dimension: the round's clients)."""

    def batched_client_side(self, stacked: Tensors, *, generator: torch.Generator) -> tuple[Tensors, Tensors]:
        """The observations and per-client info (name -> (K,) tensor, e.g. norms)."""

    def batched_server_side(self, stacked: Tensors, num_examples: torch.Tensor, *, expected_clients: int,
                            generator: torch.Generator) -> Tensors:
        """The aggregate of the observations (``num_examples``: (K,) local sizes)."""


def _class_path(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _weighted_mean(stacked: Tensors, num_examples: torch.Tensor) -> Tensors:
    """FedAvg's mean weighted by ``max(n, 1)``; zeros when the round has no client."""
    if len(num_examples) == 0:
        return {n: torch.zeros(t.shape[1:], dtype=t.dtype, device=t.device) for n, t in stacked.items()}
    w = num_examples.clamp_min(1).double()
    w = w / w.sum()
    return {n: torch.tensordot(w.to(t.dtype), t, dims=1) for n, t in stacked.items()}


class _PlainAggregation:
    """FedAvg / FedSGD (McMahan et al. 2017): identity client side, example-weighted mean."""

    def batched_client_side(self, stacked: Tensors, *, generator: torch.Generator) -> tuple[Tensors, Tensors]:
        return stacked, {}

    def batched_server_side(self, stacked: Tensors, num_examples: torch.Tensor, **_: Any) -> Tensors:
        return _weighted_mean(stacked, num_examples)


def _noise(tensors: Tensors, std: float, generator: torch.Generator) -> Tensors:
    return {n: t + std * torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype)
            for n, t in tensors.items()}


class _DPFedAvgBatched:
    """DP-FedAvg's mechanism (``defenses.dp_fedavg``) over stacked updates."""

    def __init__(self, defense: Any) -> None:
        self.defense = defense

    def _std(self) -> float:
        if self.defense.noise_multiplier is None:
            raise RuntimeError("call prepare(schedule) before running a target_epsilon defense")
        return float(self.defense.noise_multiplier) * float(self.defense.clip_norm)

    def batched_client_side(self, stacked: Tensors, *, generator: torch.Generator) -> tuple[Tensors, Tensors]:
        clipped, norms = clip_l2_batched(stacked, float(self.defense.clip_norm))
        if self.defense.mode == "local":
            clipped = _noise(clipped, self._std(), generator)
        return clipped, {"norm_before_clipping": norms}

    def batched_server_side(self, stacked: Tensors, num_examples: torch.Tensor, *, expected_clients: int,
                            generator: torch.Generator) -> Tensors:
        if self.defense.mode == "local":
            return _weighted_mean(stacked, num_examples)
        noised = _noise({n: t.sum(0) for n, t in stacked.items()}, self._std(), generator)
        return {n: t / expected_clients for n, t in noised.items()}


def clip_l2_batched(stacked: Tensors, clip_norm: float) -> tuple[Tensors, torch.Tensor]:
    """Each client's update scaled to global L2 norm at most ``clip_norm`` (flat clipping,
    as :func:`defenses.gaussian_mechanism.clip_l2`, norms in float64), and the norms before."""
    first = next(iter(stacked.values()))
    sq = torch.zeros(first.shape[0], dtype=torch.float64, device=first.device)
    for t in stacked.values():
        sq = sq + t.double().reshape(t.shape[0], -1).square().sum(1)
    norms = sq.sqrt()
    if not bool(torch.isfinite(norms).all()):
        bad = torch.nonzero(~torch.isfinite(norms)).flatten()[:3].tolist()
        raise InvalidParameterError(
            "The update to clip must be finite. Got an update with a non-finite entry instead "
            f"(stacked clients {bad}).")
    factor = (clip_norm / norms.clamp_min(1e-12)).clamp_max(1.0)
    return {n: t * factor.to(t.dtype).view(-1, *[1] * (t.dim() - 1)) for n, t in stacked.items()}, norms


def batched_sides(defense: Defense) -> BatchedDefense:
    """The batched client and server sides of ``defense`` (a :func:`vectorisable` one)."""
    if isinstance(defense, BatchedDefense):
        return defense
    if _class_path(defense) in _PLAIN:
        return _PlainAggregation()
    return _DPFedAvgBatched(defense)


def batched_client_side(defense: Defense, stacked: Tensors, *, generator: torch.Generator) -> tuple[Tensors, Tensors]:
    """``defense``'s client side on stacked raw updates (the defense must be
    :func:`vectorisable`): the observations and per-client info."""
    ok, reason = vectorisable(defense)
    if not ok:
        raise InvalidParameterError(f"The defense {defense.name!r} cannot run vectorised: {reason}.")
    return batched_sides(defense).batched_client_side(stacked, generator=generator)


def _defense_reason(defense: Defense) -> str | None:
    name, path = getattr(defense, "name", type(defense).__name__), _class_path(defense)
    if path == _DP and _class_path(getattr(defense, "inner", None)) not in _PLAIN:
        return f"dp-fedavg wraps {_class_path(defense.inner)}, not FedAvg or FedSGD"
    if path not in _PLAIN + (_DP,) and not isinstance(defense, BatchedDefense):
        return (f"defense {name!r} ({path}) has no batched client side: only fedavg, fedsgd, dp-fedavg "
                "around one of them, and defenses with batched_client_side and batched_server_side run vectorised")
    for hook in _HOOKS:
        if getattr(type(defense), hook, None) is not getattr(Defense, hook):
            return f"defense {name!r} overrides {hook}, which the vectorised path does not run"
    return None


def _training_reason(training: LocalTraining) -> str | None:
    if training.batch_size is not None:
        return (f"minibatches (batch_size={training.batch_size}) follow a per-client order; the vectorised "
                "path runs full-batch local steps only")
    if training.loss != CROSS_ENTROPY:
        return f"the user's loss {training.loss!r} cannot be restricted to a client's real examples"
    return None


def _model_reason(model: nn.Module, training: LocalTraining) -> str | None:
    dropout_on = training.model_mode == "train" if training.dropout is None else training.dropout
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._NormBase):
            return f"module {name!r} ({type(m).__name__}) normalises by batch statistics, which padding would change"
        if dropout_on and isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
            return f"module {name!r} ({type(m).__name__}) draws random masks, which vmap does not draw as the loop"
    return None


def vectorisable(defense: Defense, training: LocalTraining | None = None,
                 model: nn.Module | None = None) -> tuple[bool, str]:
    """Whether clients can run batched for ``defense`` (with its local training, or
    ``training``; and ``model`` when given), and why or why not (a sentence for reports)."""
    training = training or defense.local_training
    reason = (_defense_reason(defense) or _training_reason(training)
              or (None if model is None else _model_reason(model, training)))
    if reason is not None:
        return False, reason
    return True, (f"{defense.name}: clients batched with torch.func.vmap "
                  f"({training.kind.value}, {training.steps} full-batch step(s))")
