"""Autoencoder reconstruction against DR-Encoder (``../shared/specs/attacks.md``): an
adversary holding a client's stage-2 code recovers the client's LoRA update, to run
gradient inversion or token leakage on it.

Two adversaries:

* the **server**, which holds the decoder and the standardisation: it decodes the client's
  code (:func:`server_reconstruction`);
* an **eavesdropper** that saw the stage-1 statistics (sent in the clear) and the code but
  not the decoder: it trains a *shadow* autoencoder on its own synthetic gradients from the
  same statistics (:func:`shadow_autoencoder`) and decodes the code with it
  (:func:`shadow_reconstruction`). Project's choice: the shadow uses the defense's public
  sizes (``ratio``, ``block``, ``hidden``) and a different seed; without the real
  encoder's weights its code space is a different basis, which is what this measures.

Scored against the client's true update by cosine and relative error
(:func:`gradient_recovery_metrics`) over all LoRA entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from defenses.gradient_autoencoder import (
    GradientAutoencoder,
    GradientLayout,
    LayerStats,
    layout_from_statistics,
    train_autoencoder,
)


def gradient_recovery_metrics(recovered: Mapping[str, torch.Tensor],
                              truth: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Cosine and relative L2 error of ``recovered`` against ``truth`` (all names of
    ``truth`` flattened together)."""
    r = torch.cat([recovered[n].reshape(-1).double().cpu() for n in truth])
    t = torch.cat([truth[n].reshape(-1).double().cpu() for n in truth])
    cos = float(torch.nn.functional.cosine_similarity(r, t, dim=0))
    rel = float((r - t).norm() / t.norm().clamp_min(1e-30))
    return {"cosine": cos, "relative_error": rel}


def server_reconstruction(defense, code: torch.Tensor) -> dict[str, torch.Tensor]:
    """The server's view: its own decoder on the client's code."""
    return defense.decode(code)


def shadow_autoencoder(shapes: Mapping[str, Sequence[int]],
                       statistics: Sequence[Mapping[str, LayerStats]], *, ratio: int, block: int,
                       hidden: int, steps: int = 300, samples: int = 512, lr: float = 1e-3,
                       seed: int = 1) -> tuple[GradientAutoencoder, GradientLayout]:
    """An eavesdropper's autoencoder trained on synthetic gradients from the released
    stage-1 statistics."""
    layout = layout_from_statistics(shapes, statistics, block=block)
    ae, _ = train_autoencoder(layout, statistics, ratio=ratio, hidden=hidden, steps=steps,
                              samples=samples, lr=lr, seed=seed)
    return ae, layout


def shadow_reconstruction(ae: GradientAutoencoder, layout: GradientLayout,
                          code: torch.Tensor) -> dict[str, torch.Tensor]:
    """Decode an observed code with the shadow decoder."""
    with torch.no_grad():
        out = ae.decoder(code.reshape(layout.blocks, -1).float().cpu())
    return layout.unflatten(out)
