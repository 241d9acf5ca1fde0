"""The Opacus training an audit runs: what you hand over, and how the audit runs it.

:class:`OpacusRun` describes your training as the audit needs it: a ``make`` function that
builds the private training as your script does (calling ``PrivacyEngine.make_private``
and returning what it returned plus the engine, an :class:`OpacusTraining`), optionally
your own training loop, the data and the delta of the claim. :func:`run_training` calls
``make`` on the data it is given (``train_data``, or ``train_data`` with input canaries),
optionally attaches a tap to the optimizer (the white-box gradient canaries of
:mod:`audit.integrations.opacus.gradient_canaries`), and trains; :func:`run_info`
describes the finished training for the report.

Requirements: the optimizer returned by ``make`` must be Opacus's DPOptimizer and the 4th
item the PrivacyEngine that trained (its accountant gives the claim,
:mod:`audit.integrations.opacus.claim`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import Dataset

from audit.core.errors import invalid
from audit.core.validation import check_interval, check_options
from audit.integrations.opacus.claim import ACCOUNTANTS, engine_history
from audit.integrations.opacus.lint_facts import OpacusStepTap, opacus_lint

#: the function named in the errors about a run (``make``, ``canaries``... are its parameters)
AUDIT_OWNER = "audit_opacus"


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


def _unpack(made: Any) -> OpacusTraining:
    from opacus import PrivacyEngine
    from opacus.optimizers import DPOptimizer

    if not isinstance(made, (tuple, list)) or len(made) != 4:
        raise invalid("make", AUDIT_OWNER, "a callable returning (model, optimizer, data_loader, privacy_engine)",
                      type(made).__name__)
    out = OpacusTraining(*made)
    if not isinstance(out.optimizer, DPOptimizer):
        raise invalid("make", AUDIT_OWNER, "a callable whose optimizer is the DPOptimizer make_private returned",
                      type(out.optimizer).__name__)
    if not isinstance(out.privacy_engine, PrivacyEngine):
        raise invalid("make", AUDIT_OWNER, "a callable returning the PrivacyEngine as 4th item",
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


def run_training(run: OpacusRun, data: Dataset, seed: int,
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


def run_info(training: OpacusTraining, sample_rate: float, *, delta: float | None = None,
             steps_run: int | None = None, tap: OpacusStepTap | None = None) -> dict:
    """What the report says of a finished training (its DP-SGD parameters, the accountant's
    history, the data and model sizes); ``sample_rate`` is the rate the audit used. With the
    claim's ``delta``, also its accounting lint (``lint``: :func:`opacus_lint` with the
    ``steps_run`` observed, or the ``tap``'s)."""
    opt = training.optimizer
    history = engine_history(training.privacy_engine)
    lint = None if delta is None else opacus_lint(training.privacy_engine, opt, training.data_loader,
                                                  delta=delta, steps_run=steps_run, tap=tap)
    return {**({"lint": lint} if lint is not None else {}),
        "noise_multiplier": float(opt.noise_multiplier),
        "max_grad_norm": float(opt.max_grad_norm),
        "sample_rate": float(sample_rate),
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


__all__ = ["AUDIT_OWNER", "OpacusRun", "OpacusTraining", "run_info", "run_training"]
