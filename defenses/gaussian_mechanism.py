"""Pure functions of the Gaussian mechanism on model updates: L2 clipping and noise.

Clipping is global over all tensors of an update (flat clipping, McMahan et al. 2018):
``u * min(1, C / ||u||_2)``. Noise is i.i.d. ``N(0, std^2)`` per coordinate, drawn from
the injected generator so a run is reproducible under its seed and fresh on every call.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from audit.core.errors import InvalidParameterError


def global_l2_norm(tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """L2 norm of all tensors taken together (float64 for stability)."""
    return torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(t.double()) for t in tensors.values()])
    )


def clip_l2(
    tensors: Mapping[str, torch.Tensor], clip_norm: float
) -> tuple[dict[str, torch.Tensor], float]:
    """Scale ``tensors`` so their global L2 norm is at most ``clip_norm``.

    Returns the clipped tensors and the norm before clipping. A non-finite entry raises
    :class:`InvalidParameterError`: a NaN would otherwise pass through ``min(1, C/NaN)``
    and break the sensitivity bound.
    """
    norm = global_l2_norm(tensors)
    if not torch.isfinite(norm):
        raise InvalidParameterError(
            "The update to clip must be finite. Got an update with a non-finite entry instead."
        )
    factor = min(1.0, clip_norm / max(float(norm), 1e-12))
    return {n: t * factor for n, t in tensors.items()}, float(norm)


def add_gaussian_noise(
    tensors: Mapping[str, torch.Tensor], std: float, *, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """``tensors`` plus fresh i.i.d. Gaussian noise of standard deviation ``std``."""
    return {
        n: t
        + std
        * torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype)
        for n, t in tensors.items()
    }
