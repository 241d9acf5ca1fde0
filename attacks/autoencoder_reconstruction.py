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

Registered as ``ae-reconstruction`` (:class:`AutoencoderReconstruction`): ``decoder``
``server`` (needs an adversary holding the server's state, e.g. threat model
``hbc-server``), ``shadow`` (any adversary that saw the stage-1 statistics, e.g.
``eavesdropper``) or ``auto`` (the server's decoder when the adversary holds it, else a
shadow). Text leakage follows on the recovered update: when it has token rows (LoRA on the
embedding), :func:`attacks.token_set_leakage.leaked_tokens` reads the batch's token set
from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from attacks.token_set_leakage import leaked_tokens, token_rows
from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.errors import InvalidParameterError
from audit.metrics.scoring import gradient_recovery_metrics  # noqa: F401  (scores this attack)
from audit.core.validation import check_options, check_interval, check_positive

from defenses.gradient_autoencoder import (
    GradientAutoencoder,
    GradientLayout,
    LayerStats,
    layout_from_statistics,
    train_autoencoder,
)


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


DECODERS = ("auto", "server", "shadow")


class AutoencoderReconstruction(Attack):
    """Decode a DR-Encoder stage-2 code into the client's LoRA update (server's decoder or a
    shadow autoencoder), then read its token set when it has token rows."""

    name = "ae-reconstruction"
    family = "update-reconstruction"

    def __init__(self, *, decoder: str = "auto", shadow_steps: int = 300,
                 shadow_samples: int = 512, shadow_lr: float = 1e-3, shadow_seed: int = 1,
                 factor: float = 5.0) -> None:
        self.decoder = check_options("decoder", self.name, decoder, DECODERS)
        self.shadow_steps = check_interval("shadow_steps", self.name, shadow_steps, kind=int, low=1)
        self.shadow_samples = check_interval("shadow_samples", self.name, shadow_samples, kind=int,
                                             low=1)
        self.shadow_lr = check_positive("shadow_lr", self.name, shadow_lr)
        self.shadow_seed = check_interval("shadow_seed", self.name, shadow_seed, kind=int, low=0)
        self.factor = check_positive("factor", self.name, factor)
        self._shadow: tuple[int, GradientAutoencoder, GradientLayout] | None = None

    def params(self) -> dict[str, Any]:
        return {"decoder": self.decoder, "shadow_steps": self.shadow_steps,
                "shadow_samples": self.shadow_samples, "shadow_lr": self.shadow_lr,
                "shadow_seed": self.shadow_seed, "factor": self.factor}

    def _decode_shadow(self, view: AttackView, code: torch.Tensor) -> dict[str, torch.Tensor]:
        state = view.defense_params
        stats, shapes = state.get("statistics"), state.get("shapes")
        if not stats or not shapes:
            raise InvalidParameterError(
                f"Attack {self.name!r} with decoder='shadow' needs the stage-1 statistics of a "
                "DR-Encoder run (defense 'dr-encoder'). Got a defense that released none instead.")
        key = id(stats)
        if self._shadow is None or self._shadow[0] != key:  # one shadow per run
            ae, layout = shadow_autoencoder(
                shapes, stats, ratio=int(state["ratio"]), block=int(state["block"]),
                hidden=int(state["hidden"]), steps=self.shadow_steps, samples=self.shadow_samples,
                lr=self.shadow_lr, seed=self.shadow_seed)
            self._shadow = (key, ae, layout)
        return shadow_reconstruction(self._shadow[1], self._shadow[2], code)

    def run(self, view: AttackView, *, generator: torch.Generator, device: torch.device,
            progress: bool = False) -> AttackResult:
        code = view.target.tensors.get("code")
        if code is None:
            raise InvalidParameterError(
                f"Attack {self.name!r} decodes DR-Encoder's stage-2 codes (defense "
                f"'dr-encoder'). Got an observation with entries {sorted(view.target.tensors)[:4]} "
                "instead.")
        server = view.server_state or {}
        use = self.decoder
        if use == "auto":
            use = "server" if server.get("autoencoder") is not None else "shadow"
        if use == "server":
            if server.get("autoencoder") is None:
                raise InvalidParameterError(
                    f"Attack {self.name!r} with decoder='server' needs an adversary holding the "
                    f"server's decoder (threat model 'hbc-server'). Got threat model "
                    f"{view.threat_model.name!r} instead.")
            with torch.no_grad():
                layout = server["layout"]
                out = server["autoencoder"].decoder(code.reshape(layout.blocks, -1).float().cpu())
            recovered = layout.unflatten(out)
        else:
            recovered = self._decode_shadow(view, code)
        rows = token_rows(recovered)
        tokens = None if rows is None else [sorted(leaked_tokens(rows, factor=self.factor))]
        return AttackResult(gradient=recovered, tokens=tokens, stats={"decoder": use == "server"})
