"""A bug zoo: DP mechanisms with realistic planted bugs, each beside a correct twin.

Every mechanism releases a client's update (a vector ``data`` of shape (d,), or (rounds, d)
or (layers, d) where stated) under local DP with replace-one neighbours, and claims
``(epsilon, delta)``. A tester must flag the buggy ones and pass the twins. The bugs are
the ones practitioners make (see ``../shared/specs/auditing.md``):

1. ``sensitivity-off-by-2``: noise calibrated for add-or-remove (sensitivity C) while the
   releases are replace-one (sensitivity 2C).
2. ``noise-not-scaled-by-clip``: std z instead of z * C.
3. ``clip-after-noise``: the noise is added first and the result clipped.
4. ``noise-reused-across-rounds``: one noise draw serves every round.
5. ``per-layer-budget-composed-wrongly``: each of L layers gets the whole budget.
6. ``sigma-from-wrong-formula``: the Laplace scale 2C/epsilon used as the Gaussian std.
7. ``floating-point-laplace``: textbook inverse-CDF Laplace in floating point (Mironov
   2012); its twin is the discrete (geometric) Laplace mechanism on a grid.

Choices: clip norm C = 1 (C = 3 for bug 2, so forgetting it matters), noise multipliers
calibrated with the PLD accountant; the correct twins are the same code without the bug.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from audit.privacy.accounting.accountants import GaussianEventSpec, Neighbouring, calibrate_noise_multiplier


def _clip_rows(x: torch.Tensor, c: float) -> torch.Tensor:
    norms = x.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    return x * torch.clamp(c / norms, max=1.0)


def calibrated_z(epsilon: float, delta: float, compositions: int = 1, *, replace: bool = True) -> float:
    """Noise multiplier for ``compositions`` Gaussian releases at (epsilon, delta)."""
    rel = Neighbouring.REPLACE if replace else Neighbouring.ADD_OR_REMOVE
    return calibrate_noise_multiplier(GaussianEventSpec(1.0, compositions, 1.0, rel),
                                      target_epsilon=epsilon, delta=delta)


@dataclass
class GaussianRelease:
    """Clip each row of ``data`` to C and add N(0, (z C)^2) noise; rows are rounds/layers."""

    name: str
    epsilon: float
    delta: float = 1e-5
    clip: float = 1.0
    rows: int = 1
    bug: str | None = None
    z: float = field(init=False)

    def __post_init__(self) -> None:
        if self.bug == "sensitivity-off-by-2":
            self.z = calibrated_z(self.epsilon, self.delta, self.rows, replace=False)
        elif self.bug == "per-layer-budget-composed-wrongly":
            self.z = calibrated_z(self.epsilon, self.delta, 1)  # each layer: the full budget
        elif self.bug == "sigma-from-wrong-formula":
            self.z = 2.0 / self.epsilon  # Laplace scale b = 2C/eps used as the Gaussian std / C
        else:
            self.z = calibrated_z(self.epsilon, self.delta, self.rows)

    def __call__(self, data: torch.Tensor, *, generator: torch.Generator, batch: int = 1) -> torch.Tensor:
        x = data.reshape(self.rows, -1).double()
        std = self.z * (1.0 if self.bug == "noise-not-scaled-by-clip" else self.clip)
        shape = (batch, *x.shape)
        if self.bug == "noise-reused-across-rounds":
            noise = torch.randn((batch, 1, x.shape[1]), generator=generator, dtype=torch.float64).expand(shape)
        else:
            noise = torch.randn(shape, generator=generator, dtype=torch.float64)
        if self.bug == "clip-after-noise":
            return _clip_rows(x + std * noise, self.clip).reshape(batch, -1)
        return (_clip_rows(x, self.clip) + std * noise).reshape(batch, -1)


@dataclass
class LaplaceRelease:
    """Laplace mechanism on a scalar in [-1, 1] (sensitivity 2), epsilon = 2 / b.

    ``floating-point-laplace``: the textbook ``x - b sgn(u) ln(1 - 2|u|)`` in float64,
    whose set of reachable outputs depends on x (Mironov 2012). The twin adds the
    difference of two geometric variables on a grid of step ``grid`` (a discrete Laplace),
    after rounding x to the grid: exact arithmetic, no such leak.
    """

    name: str
    epsilon: float
    delta: float = 0.0
    bug: str | None = None
    grid: float = 2.0**-10

    @property
    def scale(self) -> float:
        """Laplace scale b = sensitivity / epsilon."""
        return 2.0 / self.epsilon

    def __call__(self, data: torch.Tensor, *, generator: torch.Generator, batch: int = 1) -> torch.Tensor:
        x = float(data.reshape(-1)[0])
        b = self.scale
        if self.bug == "floating-point-laplace":
            u = torch.rand(batch, generator=generator, dtype=torch.float64) - 0.5
            return (x - b * torch.sign(u) * torch.log1p(-2 * u.abs())).reshape(batch, 1)
        p = 1.0 - math.exp(-self.grid / b)  # geometric success probability per grid step
        g = torch.distributions.Geometric(probs=torch.tensor(p, dtype=torch.float64))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            k = g.sample((batch,)) - g.sample((batch,))
        return (round(x / self.grid) * self.grid + k * self.grid).reshape(batch, 1)


BUGS = (
    "sensitivity-off-by-2",
    "noise-not-scaled-by-clip",
    "clip-after-noise",
    "noise-reused-across-rounds",
    "per-layer-budget-composed-wrongly",
    "sigma-from-wrong-formula",
    "floating-point-laplace",
)


def zoo(bug: str, *, correct: bool = False):
    """The mechanism with ``bug`` planted (or its correct twin) and a worst-case pair."""
    twin = None if correct else bug
    d = 4
    far = torch.zeros(d)
    far[0] = 1000.0  # far outside the clip ball, so clipping matters
    if bug == "floating-point-laplace":
        return LaplaceRelease(bug, 1.0, bug=twin), torch.tensor([0.0]), torch.tensor([2.0**-20])
    rows = {"noise-reused-across-rounds": 2, "per-layer-budget-composed-wrongly": 4}.get(bug, 1)
    clip = 3.0 if bug == "noise-not-scaled-by-clip" else 1.0
    eps = 2.0 if rows > 1 else 1.0
    mech = GaussianRelease(bug, eps, clip=clip, rows=rows, bug=twin)
    if bug == "noise-reused-across-rounds":  # the pair differs in the second round only
        a = torch.stack([far, far])
        return mech, a, torch.stack([far, -far])
    data = far.repeat(rows, 1)
    return mech, data, -data
