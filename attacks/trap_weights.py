"""Trap weights of a malicious server (Boenisch, Dziedzic, Schuster, Shamsabadi, Shumailov,
Papernot 2023, "When the curious abandon honesty: Federated learning is not private",
IEEE EuroS&P).

The server rewrites the first fully connected layer so that each ReLU unit fires for few
inputs: it draws the rows at random and shrinks their positive part. A unit fired by one
example of the batch only has ``dL/dW_i = c x`` and ``dL/db_i = c``, so ``x = dL/dW_i /
dL/db_i`` exactly (the analytic attack of :mod:`attacks.analytic_fc`, made to work at large
batches by the crafted weights). The model's architecture is unchanged, only its weights.

Project choices, where the paper leaves them open:

* **Rows**: i.i.d. ``N(0, 1/d)`` entries, the positive ones multiplied by ``shrink`` (the
  paper's scaling factor; 0.9 by default). How often a unit fires then still depends on the
  data (inputs reach the layer standardised, not centred per image), so the project sets
  each unit's bias from the server's public data: minus the ``1 - 1/batch_size`` quantile of
  the unit's pre-activation there, so that it fires for one example in ``batch_size`` and
  is fired by exactly one example of a batch with probability about ``1/e``. Without public
  data the biases are 0 (the paper's setting).
* **Which reconstructions**: every unit with a non-zero bias gradient (above ``tol`` times
  the largest) gives a candidate; a candidate recovered by several units (the same example
  fired them alone: the candidates agree to ``1e-4`` mean squared error) counts once per
  unit, and the ``batch_size`` candidates found by the most units are returned (mixtures of
  several examples are found by one unit only), then mid-grey images for the rest. A
  candidate outside ``[-1e-3, 1 + 1e-3]`` (after undoing the standardisation) is dropped:
  one example's input lies in [0, 1], a ratio of contributions of mixed sign need not.
* **Layer**: the model's first parametrised layer must be ``nn.Linear`` with a bias, with
  only the fixed standardisation and a flatten before it (e.g. the built-in ``mlp``); the
  standardisation is undone on the candidates.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from attacks.analytic_fc import first_linear
from attacks.imprint import pad_to_batch
from audit.core.attack import AttackResult, AttackView, CraftingContext, ModelCraftingAttack
from audit.core.validation import check_interval, check_known_keys

#: candidates closer than this (mean squared error, [0, 1] scale) are one example
SAME_EXAMPLE_MSE = 1e-4
#: a candidate with values outside [-slack, 1 + slack] is not one example's input
RANGE_SLACK = 1e-3


class TrapWeights(ModelCraftingAttack):
    """Boenisch et al.'s trap weights in the first fully connected layer."""

    name = "trap-weights"
    family = "gradient-inversion"

    def __init__(self, *, shrink: float = 0.9, tol: float = 1e-6) -> None:
        self.shrink = check_interval("shrink", self.name, shrink, low=0, high=1, closed="left")
        self.tol = check_interval("tol", self.name, tol, low=0, high=1, closed="left")

    @classmethod
    def from_params(cls, **params: Any) -> "TrapWeights":
        """Build from user parameters (``shrink``, ``tol``)."""
        check_known_keys(params, ("shrink", "tol"), cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {"shrink": self.shrink, "tol": self.tol}

    def craft(self, model: nn.Module, *, context: CraftingContext,
              generator: torch.Generator) -> nn.Module:
        name, layer = first_linear(model)
        rows = torch.randn(layer.weight.shape, generator=generator) / math.sqrt(layer.in_features)
        rows = torch.where(rows > 0, rows * self.shrink, rows)
        with torch.no_grad():
            layer.weight.copy_(rows)
            layer.bias.zero_()
            if context.public is not None and len(context.public) >= 2:
                inputs: dict[str, torch.Tensor] = {}

                def keep(module, args, out) -> None:
                    inputs["x"] = args[0]

                hook = layer.register_forward_hook(keep)
                try:
                    model(context.public.inputs.to(layer.weight.device))
                finally:
                    hook.remove()
                pre = inputs["x"] @ rows.T.to(inputs["x"].dtype)
                rate = 1.0 / max(context.batch_size, 2)
                layer.bias.copy_(-torch.quantile(pre.double(), 1.0 - rate, dim=0).float())
        return model

    def run(self, view: AttackView, *, generator, device, progress=False) -> AttackResult:
        name, _ = first_linear(view.model)
        gw = view.target.tensors[f"{name}.weight"].detach().double().cpu()
        gb = view.target.tensors[f"{name}.bias"].detach().double().cpu()
        largest = float(gb.abs().max())
        units = [int(i) for i in torch.nonzero(gb.abs() > self.tol * largest).flatten()] if largest > 0 else []
        flat = gw[units] / gb[units, None] if units else gw[:0]
        x = flat.reshape(len(units), *view.input_shape)
        standardize = getattr(view.model, "standardize", None)
        if standardize is not None:
            x = x * standardize.std.double().cpu().reshape(1, -1, 1, 1) + standardize.mean.double().cpu().reshape(1, -1, 1, 1)
        # one example's input lies in [0, 1]; a ratio of mixed-sign contributions need not
        inside = ((x >= -RANGE_SLACK) & (x <= 1 + RANGE_SLACK)).flatten(1).all(dim=1)
        x = x[inside].clamp(0.0, 1.0)
        flat_x = x.reshape(len(x), -1)
        close = (torch.cdist(flat_x, flat_x) ** 2 / max(flat_x.shape[1], 1)) < SAME_EXAMPLE_MSE
        groups: list[list[int]] = []  # candidates of one example (greedy, in unit order)
        free = torch.ones(len(x), dtype=torch.bool)
        for i in range(len(x)):
            if free[i]:
                members = torch.nonzero(close[i] & free).flatten()
                free[members] = False
                groups.append(members.tolist())
        groups.sort(key=len, reverse=True)
        images = pad_to_batch([x[g[0]] for g in groups], view.batch_size, view.input_shape)
        return AttackResult(images=images, stats={
            "units_fired": len(units), "in_range": len(x), "distinct_candidates": len(groups),
            "repeated_candidates": sum(len(g) > 1 for g in groups)})
