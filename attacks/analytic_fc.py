"""Analytic input recovery through a fully connected first layer (Phong, Aono, Hayashi,
Wang, Moriai 2017, "Privacy-preserving deep learning via additively homomorphic
encryption"; also Fan et al. 2020).

For ``h = W x + b`` and batch 1, ``dL/dW_i = (dL/dh_i) x^T`` and ``dL/db_i = dL/dh_i``, so
``x = (dL/dW_i) / (dL/db_i)`` for any row i with a non-zero bias gradient: exact up to
float error. The model's fixed standardisation is undone afterwards (the adversary knows
the architecture).

Choices: the row with the largest ``|dL/db_i|`` is used per reconstruction; at batch B > 1
the B rows with the largest bias gradients give B reconstructions (each a mixture of the
batch in general, unless a row was activated by one example only); a model delta is used
as it comes (the ratio is scale-free, exact for one local step).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.errors import InvalidParameterError
from audit.core.validation import check_known_keys


def first_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The model's first parametrised layer, which must be ``nn.Linear`` with a bias."""
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            if isinstance(module, nn.Linear) and module.bias is not None:
                return name, module
            break
    raise InvalidParameterError(
        "The 'model' parameter of analytic-fc must be a model whose first layer is fully "
        f"connected with a bias (e.g. 'mlp'). Got {type(model).__name__} instead."
    )


class AnalyticFC(Attack):
    """Closed-form recovery of the input of a fully connected first layer."""

    name = "analytic-fc"
    family = "gradient-inversion"

    @classmethod
    def from_params(cls, **params: Any) -> "AnalyticFC":
        """Build (no parameters)."""
        check_known_keys(params, (), cls.name)
        return cls()

    def params(self) -> dict[str, Any]:
        return {}

    def run(self, view: AttackView, *, generator, device, progress=False) -> AttackResult:
        name, _ = first_linear(view.model)
        gw = view.target.tensors[f"{name}.weight"].detach().double().cpu()
        gb = view.target.tensors[f"{name}.bias"].detach().double().cpu()
        rows = torch.argsort(gb.abs(), descending=True)[: view.batch_size]
        flat = gw[rows] / gb[rows, None]
        standardize = getattr(view.model, "standardize", None)
        x = flat.reshape(len(rows), *view.input_shape)
        if standardize is not None:
            mean = standardize.mean.double().cpu().reshape(1, -1, 1, 1)
            std = standardize.std.double().cpu().reshape(1, -1, 1, 1)
            x = x * std + mean
        return AttackResult(
            images=x.float().clamp(0.0, 1.0),
            stats={"rows_used": len(rows), "min_abs_bias_gradient": float(gb[rows].abs().min())},
        )
