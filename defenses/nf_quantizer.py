"""Block-wise absmax quantization with a NormalFloat-style codebook (FedQSN, arXiv 2508.18911).

FedQSN's server sends clients a proxy of the global model whose attention and FFN weight
matrices are quantized: the weight, flattened in its stored (row-major) layout, is cut into
blocks of ``block`` entries; each block is divided by its absolute maximum (its *scale*), each
normalised entry is replaced by the nearest level of a fixed codebook in [-1, 1], and the
client sees ``level * scale``. The codebook is NF-style (QLoRA's NF4, Dettmers et al. 2023):
quantiles of the standard normal, so that levels are dense where normally distributed weights
are dense.

What the official code (github.com/zb2313/FedQSN, ``code/quant_utils.py``) does, read there:

* **codebook**: with ``h = 2**(bits - 1)``, it takes ``h + 1`` equally spaced probabilities
  from ``offset = 0.9677083`` (QLoRA's NF4 offset) down to 0.5, drops the last one (0.5,
  whose quantile would be 0), and maps them through the normal quantile function: ``h``
  positive levels. The negative side is the same ``h`` values negated, and one exact zero is
  added: ``2h + 1 = 2**bits + 1`` levels, symmetric around 0, divided by their maximum so that
  the extremes are exactly -1 and +1. (QLoRA's NF4 is asymmetric instead: 8 positive, 7
  negative levels and zero, 2**bits in all.) Note that 2**bits + 1 levels do not fit in
  ``bits`` bits: a code needs ``bits + 1`` bits.
* **rounding**: the thresholds are the midpoints of adjacent levels; an entry equal to a
  midpoint goes to the *lower* level.
* **blocks**: ``tensor.view(-1, block)``: the block count must divide the tensor's size
  exactly, and an all-zero block divides 0 by 0 (NaN).
* **where**: only the attention and FFN weight matrices (GPT-2: ``attn.c_attn``,
  ``attn.c_proj``, ``mlp.c_fc``, ``mlp.c_proj``; biases, embeddings, norms untouched); the
  server quantizes the broadcast with ``bit_width`` bits and the client's returned model is
  quantized with 4 bits before averaging.

Choices of this module (differences from the official code):

* the codebook is computed in float64 (``torch.special.ndtri`` on a float64 ``linspace``;
  the official code spaces the probabilities in float32 and calls scipy), then cast to the
  weight's precision: the levels agree with the official ones to float32 precision;
* the last block may be partial (it is padded with zeros for the absmax, which does not
  change it); an all-zero block has scale 0 and dequantizes to zeros (no NaN);
* ``bits`` is limited to [2, 8] (at most 257 levels: codes are ``uint8`` up to 7 bits,
  ``int16`` at 8 bits);
* weights must be finite; the computation runs in float32 (float64 for float64 weights)
  and :func:`dequantize` returns the input's dtype.

Guarantees (tested in ``tests/defenses/test_nf_quantizer.py``): the absmax of every block is
reproduced exactly (its entry normalises to exactly +-1, a level); every entry's error is at
most ``scale * max_half_gap(codebook)`` (:func:`max_roundtrip_error`), up to a few units in
the last place of the scale from floating-point rounding; quantizing a dequantized tensor
gives it back exactly, as long as ``scale * (smallest non-zero level)`` is not subnormal.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from audit.core.errors import invalid
from audit.core.validation import check_interval

#: QLoRA's NF4 offset, also FedQSN's: the probability of the largest positive level
NF_OFFSET = 0.9677083
MIN_BITS = 2
MAX_BITS = 8


@functools.lru_cache(maxsize=64)
def _codebook64(bits: int, offset: float) -> torch.Tensor:
    half = 2 ** (bits - 1)
    probs = torch.linspace(offset, 0.5, half + 1, dtype=torch.float64)[:-1]
    positive = torch.special.ndtri(probs)
    levels = torch.cat([positive, torch.zeros(1, dtype=torch.float64), -positive]).sort().values
    return levels / levels.max()


def nf_codebook(bits: int, *, offset: float = NF_OFFSET) -> torch.Tensor:
    """The sorted FedQSN codebook of ``2**bits + 1`` levels (float64): ``2**(bits-1)`` normal
    quantiles, their negatives and 0, scaled so that the extremes are exactly -1 and +1."""
    owner = "nf_codebook"
    bits = check_interval("bits", owner, bits, kind=int, low=MIN_BITS, high=MAX_BITS)
    offset = check_interval("offset", owner, offset, low=0.5, high=1, closed="neither")
    return _codebook64(bits, offset).clone()


def max_half_gap(codebook: torch.Tensor) -> float:
    """Half of the largest gap between adjacent levels of a sorted ``codebook``: the worst
    rounding error of a normalised entry in [-1, 1]."""
    if not isinstance(codebook, torch.Tensor) or codebook.dim() != 1 or codebook.numel() < 2:
        raise invalid("codebook", "max_half_gap", "a 1-D tensor of at least 2 sorted levels", codebook)
    gaps = codebook[1:].double() - codebook[:-1].double()
    if bool((gaps <= 0).any()):
        raise invalid("codebook", "max_half_gap", "strictly increasing", codebook)
    return float(gaps.max()) / 2


@dataclass(frozen=True)
class QuantizedTensor:
    """Codes (indices into :func:`nf_codebook`, shaped like the weight), one absmax scale per
    block of ``block`` consecutive entries of the flattened weight, and what is needed to
    undo it."""

    codes: torch.Tensor
    scales: torch.Tensor
    shape: torch.Size
    bits: int
    block: int
    dtype: torch.dtype

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def per_entry(self, per_block: torch.Tensor) -> torch.Tensor:
        """A per-block quantity (e.g. the scales or :func:`max_roundtrip_error`) repeated for
        each entry of its block, shaped like the weight."""
        index = torch.arange(self.numel, device=per_block.device) // self.block
        return per_block[index].reshape(self.shape)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _blocks(flat: torch.Tensor, block: int) -> torch.Tensor:
    n_blocks = -(-flat.numel() // block)
    pad = n_blocks * block - flat.numel()
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return flat.view(n_blocks, block)


def quantize_blockwise(w: torch.Tensor, bits: int, block: int = 64) -> QuantizedTensor:
    """Quantize ``w`` block-wise: absmax scale per block, nearest level of
    :func:`nf_codebook` (ties to the lower level, as the official code)."""
    owner = "quantize_blockwise"
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise invalid("w", owner, "a floating-point torch.Tensor", type(w).__name__
                      if not isinstance(w, torch.Tensor) else w.dtype)
    bits = check_interval("bits", owner, bits, kind=int, low=MIN_BITS, high=MAX_BITS)
    block = check_interval("block", owner, block, kind=int, low=1)
    bad = int((~torch.isfinite(w)).sum())
    if bad:
        raise invalid("w", owner, "a tensor of finite values", f"a tensor with {bad} non-finite entries")
    cdtype = _compute_dtype(w.dtype)
    levels = nf_codebook(bits).to(device=w.device, dtype=cdtype)
    thresholds = (levels[:-1] + levels[1:]) / 2
    blocks = _blocks(w.detach().reshape(-1).to(cdtype), block)
    scales = blocks.abs().amax(dim=1) if blocks.shape[0] else blocks.new_zeros(0)
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    normalised = (blocks / safe[:, None]).clamp(-1.0, 1.0)
    # first threshold >= x: T[i-1] < x <= T[i] -> level i (a midpoint goes to the lower level)
    index = torch.searchsorted(thresholds, normalised.contiguous(), right=False)
    code_dtype = torch.uint8 if levels.numel() <= 256 else torch.int16
    codes = index.reshape(-1)[: w.numel()].to(code_dtype).reshape(w.shape)
    return QuantizedTensor(codes=codes, scales=scales, shape=w.shape, bits=bits, block=block, dtype=w.dtype)


def dequantize(q: QuantizedTensor) -> torch.Tensor:
    """``level * scale`` for every entry, shaped and typed like the quantized weight."""
    if not isinstance(q, QuantizedTensor):
        raise invalid("q", "dequantize", "a QuantizedTensor", type(q).__name__)
    levels = nf_codebook(q.bits).to(device=q.scales.device, dtype=q.scales.dtype)
    values = _blocks(levels[q.codes.reshape(-1).long()], q.block) * q.scales[:, None]
    return values.reshape(-1)[: q.numel].reshape(q.shape).to(q.dtype)


def quantize_dequantize(w: torch.Tensor, bits: int, block: int = 64) -> torch.Tensor:
    """What a client of FedQSN sees of ``w``: :func:`dequantize` of :func:`quantize_blockwise`."""
    return dequantize(quantize_blockwise(w, bits, block))


def max_roundtrip_error(q_or_scales: QuantizedTensor | torch.Tensor,
                        codebook: torch.Tensor | None = None) -> torch.Tensor:
    """The codebook's error bound per block: ``scale * max_half_gap(codebook)``.

    Every entry ``w`` of a block satisfies ``|w - dequantize(q)| <= bound`` (up to a few
    units in the last place of the scale). Pass a :class:`QuantizedTensor` (the codebook
    defaults to its ``nf_codebook(bits)``) or the per-block scales and the codebook; use
    :meth:`QuantizedTensor.per_entry` for a bound shaped like the weight.
    """
    owner = "max_roundtrip_error"
    if isinstance(q_or_scales, QuantizedTensor):
        scales = q_or_scales.scales
        if codebook is None:
            codebook = nf_codebook(q_or_scales.bits)
    elif isinstance(q_or_scales, torch.Tensor):
        scales = q_or_scales
        if codebook is None:
            raise invalid("codebook", owner, "a codebook tensor when scales are given", None)
    else:
        raise invalid("q_or_scales", owner, "a QuantizedTensor or a tensor of scales",
                      type(q_or_scales).__name__)
    return scales.abs() * max_half_gap(codebook)
