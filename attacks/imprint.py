"""The imprint (binning) module of a malicious server (Fowl, Geiping, Czaja, Goldblum,
Goldstein 2022, "Robbing the Fed: Directly obtaining private data in federated learning
with modified models", ICLR).

The server puts a block in front of the model: ``k`` ReLU units that all measure the same
statistic of the input, ``h(x) = <w, x>``, against increasing thresholds
``t_1 < ... < t_k`` (unit ``i`` fires when ``h(x) > t_i``), and a linear map back into the
input space. For unit ``i`` the update is ``dL/dW_i = sum_x [h(x) > t_i] c_i(x) x`` and
``dL/db_i = sum_x [h(x) > t_i] c_i(x)``. When every unit feeds back along the same
direction, ``c_i(x) = c(x)`` for all ``i``, so the difference of two adjacent units holds
only the examples whose statistic lies between their thresholds, and

    x = (dL/dW_i - dL/dW_{i+1}) / (dL/db_i - dL/db_{i+1})

is exactly the input that alone falls in bin ``i``. The sum over a batch, or over the
clients of a secure aggregate, leaves it exact: an example alone in its bin is recovered
whatever else is in the update (the paper's point; scaling an update, as clipping does,
cancels in the ratio). Two examples in one bin give their weighted mean; DP noise on the
update (local, or central on the aggregate) destroys the differences.

Project choices, where the paper leaves them open:

* **Statistic**: ``measurement="brightness"`` (the paper's default: the mean of all input
  values) or ``"random"`` (a seeded Gaussian direction, unit norm).
* **Thresholds**: a Gaussian fitted to the statistic on the server's public split (mean and
  standard deviation; the paper fits a distribution to public data too), cut into ``bins +
  1`` equal-mass bins: ``t_i = mean + std * Phi^-1(i / (bins + 1))``. Examples below
  ``t_1`` are in no unit and cannot be recovered.
* **Feedback**: the block adds ``scale * v * sum_i relu(h_i)`` to its input, ``v`` a seeded
  unit direction (``scale`` 1e-3), so the crafted model computes almost what the original
  did and ``c(x) = scale * <v, dL/dx>`` is non-zero for almost every input.
* **Output**: ``batch_size`` reconstructions, the non-empty bins first in order of
  ``|dL/db_i - dL/db_{i+1}|`` (a bin is empty when that difference is below ``tol`` times
  the largest), then the mid-grey image for each example no bin recovered; values clamped
  to [0, 1]. A model delta (several local steps) is used as it comes: the ratio is exact
  for one step and approximate after more.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from audit.core.attack import AttackResult, AttackView, CraftingContext, ModelCraftingAttack
from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_known_keys, check_options

MEASUREMENTS = ("brightness", "random")


class ImprintBlock(nn.Module):
    """``x + scale * v * sum_i relu(<w, x> - t_i)``: the binning units and their feedback."""

    def __init__(self, input_shape: tuple[int, ...], direction: torch.Tensor,
                 thresholds: torch.Tensor, feedback: torch.Tensor) -> None:
        super().__init__()
        d, k = math.prod(input_shape), len(thresholds)
        self.input_shape = tuple(input_shape)
        self.linear0 = nn.Linear(d, k)
        self.linear1 = nn.Linear(k, d, bias=False)
        with torch.no_grad():
            self.linear0.weight.copy_(direction.reshape(1, d).expand(k, d))
            self.linear0.bias.copy_(-thresholds)
            self.linear1.weight.copy_(feedback.reshape(d, 1).expand(d, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.linear0(x.flatten(1)))
        return x + self.linear1(h).reshape(x.shape)


def find_block(model: nn.Module, kind: type[nn.Module], attack: str) -> tuple[str, nn.Module]:
    """The name and module of the first ``kind`` inside ``model``, or an error saying that
    the broadcast model is not the one the attack crafted."""
    for name, module in model.named_modules():
        if isinstance(module, kind):
            return name, module
    raise InvalidParameterError(
        f"The 'model' parameter of {attack} must be the broadcast model the attack crafted (it "
        f"holds a {kind.__name__}); run it under a malicious threat model (malicious-server, "
        f"malicious-server-secagg). Got {type(model).__name__} instead.")


def pad_to_batch(images: list[torch.Tensor], batch_size: int, input_shape) -> torch.Tensor:
    """``images`` (at most ``batch_size``), completed with mid-grey images, as one tensor in
    [0, 1]."""
    out = torch.full((batch_size, *input_shape), 0.5)
    for i, x in enumerate(images[:batch_size]):
        out[i] = x.reshape(input_shape).float().clamp(0.0, 1.0)
    return out


class Imprint(ModelCraftingAttack):
    """Robbing the Fed's imprint module: exact recovery of the examples alone in a bin."""

    name = "imprint"
    family = "gradient-inversion"

    def __init__(self, *, bins: int = 1024, measurement: str = "random", scale: float = 1e-3,
                 tol: float = 1e-5) -> None:
        self.bins = check_interval("bins", self.name, bins, kind=int, low=2, high=65536)
        self.measurement = check_options("measurement", self.name, measurement, MEASUREMENTS)
        self.scale = check_interval("scale", self.name, scale, low=0, high=1, closed="right")
        self.tol = check_interval("tol", self.name, tol, low=0, high=1, closed="left")

    @classmethod
    def from_params(cls, **params: Any) -> "Imprint":
        """Build from user parameters (``bins``, ``measurement``, ``scale``, ``tol``)."""
        check_known_keys(params, ("bins", "measurement", "scale", "tol"), cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {"bins": self.bins, "measurement": self.measurement, "scale": self.scale,
                "tol": self.tol}

    def craft(self, model: nn.Module, *, context: CraftingContext,
              generator: torch.Generator) -> nn.Module:
        shape = tuple(context.input_shape)
        d = math.prod(shape)
        if context.public is None or len(context.public) < 2:
            raise InvalidParameterError(
                f"The 'public' data of {self.name} must hold at least 2 examples to place the "
                "bins (the server's public split: items no client holds). Got "
                f"{0 if context.public is None else len(context.public)} instead; lower "
                "num_targets or batch_size, or use a larger dataset.")
        if self.measurement == "brightness":
            direction = torch.full((d,), 1.0 / d)
        else:
            direction = torch.randn(d, generator=generator, dtype=torch.float64)
            direction = (direction / direction.norm()).float()
        stats = context.public.inputs.reshape(len(context.public), d).double() @ direction.double()
        mean, std = float(stats.mean()), max(float(stats.std()), 1e-12)
        levels = torch.arange(1, self.bins + 1, dtype=torch.float64) / (self.bins + 1)
        thresholds = mean + std * math.sqrt(2.0) * torch.erfinv(2 * levels - 1)
        feedback = torch.randn(d, generator=generator, dtype=torch.float64)
        feedback = (self.scale * feedback / feedback.norm()).float()
        block = ImprintBlock(shape, direction, thresholds.float(), feedback)
        return nn.Sequential(OrderedDict(imprint=block, model=model))

    def run(self, view: AttackView, *, generator, device, progress=False) -> AttackResult:
        name, _ = find_block(view.model, ImprintBlock, self.name)
        prefix = f"{name}.linear0" if name else "linear0"
        try:
            gw = view.target.tensors[f"{prefix}.weight"].detach().double().cpu()
            gb = view.target.tensors[f"{prefix}.bias"].detach().double().cpu()
        except KeyError as err:
            raise InvalidParameterError(
                f"The observed update of {self.name} must carry the imprint units' tensors "
                f"({prefix}.weight, {prefix}.bias): the clients must train them. Missing {err}."
            ) from None
        # bin i lies between unit i's threshold and unit i+1's; the last bin is open above
        dw = torch.cat([gw[:-1] - gw[1:], gw[-1:]])
        db = torch.cat([gb[:-1] - gb[1:], gb[-1:]])
        size = db.abs()
        occupied = size > self.tol * float(size.max()) if float(size.max()) > 0 else size > 0
        order = [int(i) for i in torch.argsort(size, descending=True) if occupied[i]]
        recovered = [dw[i] / db[i] for i in order[: view.batch_size]]
        images = pad_to_batch(recovered, view.batch_size, view.input_shape)
        return AttackResult(images=images, stats={
            "bins": len(gb), "occupied_bins": int(occupied.sum()),
            "recovered": min(len(order), view.batch_size)})
