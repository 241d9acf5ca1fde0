"""The user's own training function, with which fedaudit trains the shadow models of a
membership audit of the user's target (``fedaudit mia --target-weights W --train SPEC``).

LiRA (Carlini et al. 2022, "Membership inference attacks from first principles") needs
shadow models trained *the way the target was*; the one who knows that way best is the
user, so the user hands it over as code, named ``path/to/file.py:train`` or
``package.module:train`` (:mod:`audit.core.user_code`), with the signature::

    def train(model: nn.Module, images: Tensor, labels: Tensor, *, seed: int) -> nn.Module | None

``model`` is freshly built by the user's model builder (on the CPU); ``images`` are the
training items as the model takes them (the dataset's items, (n, C, H, W) in [0, 1], or
(n, 1, 1, D) for tabular rows) and ``labels`` their classes (n,) int64. The function trains
``model`` in place and returns ``None``, or returns the trained model.

Project choices: the signature is checked before any training (``inspect.signature``
must accept ``(model, images, labels, seed=...)``); the inputs are copies, so the function
may change them; an exception raised inside it, or a return value other than an
``nn.Module`` or ``None``, is an :class:`~audit.core.errors.InvalidParameterError` naming
the spec and the shadow model (the CLI's one line ``Error: ...``, exit code 2); a returned
module other than ``model`` is checked again against the data (one forward pass,
:mod:`audit.models.shape_check`).
"""

from __future__ import annotations

import inspect
import reprlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from audit.core.errors import InvalidParameterError
from audit.core.user_code import load_callable
from audit.models.shape_check import check_model_fits

SIGNATURE = "train(model, images, labels, *, seed) -> nn.Module | None"


@dataclass(frozen=True)
class UserTraining:
    """The loaded training function ``fn`` of ``spec``."""

    spec: str
    fn: Callable[..., object]

    def __call__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, seed: int,
                 index: int, num_classes: int, task: str, dataset: str) -> nn.Module:
        """Shadow model ``index`` trained by the user's function (checked, as said above)."""
        try:
            out = self.fn(model, images.clone(), labels.clone(), seed=seed)
        except Exception as exc:  # the user's code: any error, named with the shadow model
            first = (str(exc).splitlines() or [""])[0]
            raise InvalidParameterError(
                f"The 'train' function {self.spec!r} failed on shadow model {index} "
                f"({type(exc).__name__}: {first}).") from None
        if out is None:
            return model
        if not isinstance(out, nn.Module):
            raise InvalidParameterError(
                f"The 'train' function {self.spec!r} must return the trained nn.Module or None. "
                f"Got {reprlib.repr(out)} ({type(out).__name__}) from shadow model {index} instead.")
        if out is not model:
            check_model_fits(out, images[:1], num_classes=num_classes, task=task,
                             model_name=f"returned by {self.spec}", dataset_name=dataset)
        return out


def load_training(spec: str, *, owner: str) -> UserTraining:
    """The user's training function ``spec``, its signature checked against :data:`SIGNATURE`."""
    fn = load_callable(spec, parameter="train", owner=owner)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: checked when called
        return UserTraining(spec, fn)
    try:
        signature.bind(None, None, None, seed=0)
    except TypeError as exc:
        raise InvalidParameterError(
            f"The 'train' parameter of {owner} must name a function {SIGNATURE}. Got {spec!r}, "
            f"which takes {signature} ({exc}), instead.") from None
    return UserTraining(spec, fn)
