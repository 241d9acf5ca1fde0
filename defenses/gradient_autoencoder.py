"""DR-Encoder's gradient autoencoder (Wu et al., arXiv 2412.17053, AAAI-25; predecessor
CG-FedLLM, arXiv 2405.13746): trained by the server on *synthetic* LoRA gradients drawn from
the per-layer, per-epoch mean and standard deviation the clients send in stage 1; the
encoder goes to the clients, the decoder stays with the server.

Verified (``../shared/specs/defenses.md``): statistics per layer and per epoch of the
clients' low-rank gradients; synthetic gradients sampled from them; encoder on the client,
decoder on the server; CG-FedLLM trains with MSE and Adam at 2e-4 and compresses about 64x.

Choices (the paper's architecture and sizes could not be read; each is a parameter):

* a *layer* is one LoRA matrix (a named parameter); an *epoch* is one stage-1 round;
* synthetic gradient = for every layer an i.i.d. ``N(mean, std^2)`` draw of its entries,
  with the statistics of one (uniformly chosen) epoch and client: the statistics are all
  the server knows, so it can draw nothing else;
* the autoencoder works on the layer-wise *standardised* gradient (``(g - mean) / std``
  with the stage-1 statistics averaged over clients and epochs, the same transform on
  client and server), flattened and cut into blocks of ``block`` entries (zero-padded),
  each block encoded by one shared MLP ``block -> hidden -> block / ratio`` (tanh) and
  decoded by its mirror; the code of a gradient is the concatenation of its blocks' codes,
  so the compression ratio is ``ratio`` up to the padding;
* MSE, Adam (lr 2e-4 as CG-FedLLM), ``steps`` mini-batches of ``batch`` synthetic
  gradients, seeded.

Consequence an audit should know: i.i.d. synthetic data have no structure to learn, so the
autoencoder can keep at most about ``1 / ratio`` of a gradient's energy in a subspace that
has nothing to do with the real gradients (measured in the tests and the benchmark).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_positive


@dataclass(frozen=True)
class LayerStats:
    """Stage-1 statistics of one layer's gradient entries in one epoch."""

    mean: float
    std: float


def layer_statistics(gradient: Mapping[str, torch.Tensor]) -> dict[str, LayerStats]:
    """Per-layer mean and standard deviation of the entries of ``gradient`` (what a
    client sends in stage 1, without noise)."""
    return {n: LayerStats(float(t.mean()), float(t.std(unbiased=False)))
            for n, t in gradient.items()}


@dataclass(frozen=True)
class GradientLayout:
    """How a named gradient is flattened, standardised and cut into blocks."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    block: int

    @property
    def size(self) -> int:
        """Entries of the gradient."""
        return sum(math.prod(s) for s in self.shapes)

    @property
    def blocks(self) -> int:
        return -(-self.size // self.block)

    def flatten(self, gradient: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(blocks, block) standardised, zero-padded."""
        parts = [(gradient[n].reshape(-1).float() - m) / s
                 for n, m, s in zip(self.names, self.mean, self.std)]
        flat = torch.cat(parts)
        pad = self.blocks * self.block - flat.numel()
        return torch.cat([flat, flat.new_zeros(pad)]).reshape(self.blocks, self.block)

    def unflatten(self, blocks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inverse of :meth:`flatten` (drops the padding, undoes the standardisation)."""
        flat = blocks.reshape(-1)[: self.size]
        out, offset = {}, 0
        for n, shape, m, s in zip(self.names, self.shapes, self.mean, self.std):
            k = math.prod(shape)
            out[n] = (flat[offset:offset + k] * s + m).reshape(shape)
            offset += k
        return out


def layout_from_statistics(shapes: Mapping[str, Sequence[int]],
                           statistics: Sequence[Mapping[str, LayerStats]], *,
                           block: int) -> GradientLayout:
    """The layout with each layer's standardisation averaged over ``statistics`` (one
    mapping per client and epoch)."""
    if not statistics:
        raise InvalidParameterError("The 'statistics' parameter needs at least one client's "
                                    "stage-1 statistics. Got none instead.")
    block = check_interval("block", "gradient autoencoder", block, kind=int, low=2)
    names = tuple(shapes)
    mean = tuple(sum(s[n].mean for s in statistics) / len(statistics) for n in names)
    std = tuple(max(sum(s[n].std for s in statistics) / len(statistics), 1e-12) for n in names)
    return GradientLayout(names, tuple(tuple(shapes[n]) for n in names), mean, std, block)


class GradientAutoencoder(nn.Module):
    """Blockwise MLP autoencoder: ``block -> hidden -> code`` and back."""

    def __init__(self, block: int, code: int, hidden: int) -> None:
        super().__init__()
        if code >= block:
            raise InvalidParameterError(
                f"The code size of the gradient autoencoder must be smaller than its block "
                f"({block}). Got {code!r} instead.")
        self.block, self.code = block, code
        self.encoder = nn.Sequential(nn.Linear(block, hidden), nn.Tanh(), nn.Linear(hidden, code))
        self.decoder = nn.Sequential(nn.Linear(code, hidden), nn.Tanh(), nn.Linear(hidden, block))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def synthetic_gradients(layout: GradientLayout, statistics: Sequence[Mapping[str, LayerStats]],
                        n: int, *, generator: torch.Generator) -> torch.Tensor:
    """``n`` synthetic gradients, standardised and blocked: (n, blocks, block). Each draws
    one (client, epoch) statistics entry and i.i.d. ``N(mean_l, std_l^2)`` entries per layer."""
    out = []
    pick = torch.randint(len(statistics), (n,), generator=generator)
    for i in pick.tolist():
        stats = statistics[i]
        g = {name: stats[name].mean + stats[name].std * torch.randn(shape, generator=generator)
             for name, shape in zip(layout.names, layout.shapes)}
        out.append(layout.flatten(g))
    return torch.stack(out)


def train_autoencoder(layout: GradientLayout, statistics: Sequence[Mapping[str, LayerStats]], *,
                      ratio: int, hidden: int = 256, steps: int = 300, batch: int = 32,
                      lr: float = 2e-4, samples: int = 512, seed: int = 0) -> tuple[GradientAutoencoder, dict]:
    """Train the autoencoder on ``samples`` synthetic gradients (the server, stage 1)."""
    ratio = check_interval("ratio", "gradient autoencoder", ratio, kind=int, low=2)
    steps = check_interval("steps", "gradient autoencoder", steps, kind=int, low=1)
    lr = check_positive("lr", "gradient autoencoder", lr)
    code = layout.block // ratio
    if code < 1:
        raise InvalidParameterError(
            f"The 'ratio' parameter of the gradient autoencoder must leave a code of at least "
            f"1 entry per block of {layout.block}. Got {ratio!r} instead.")
    gen = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    ae = GradientAutoencoder(layout.block, code, hidden)
    torch.random.set_rng_state(torch_state)
    data = synthetic_gradients(layout, statistics, samples, generator=gen).reshape(-1, layout.block)
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        idx = torch.randint(len(data), (min(batch, len(data)),), generator=gen)
        loss = nn.functional.mse_loss(ae(data[idx]), data[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = float(nn.functional.mse_loss(ae(data), data))
    return ae, {"train_mse": final, "code": code, "blocks": layout.blocks,
                "compression": layout.size / (layout.blocks * code)}
