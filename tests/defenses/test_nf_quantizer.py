"""FedQSN's block-wise NF quantizer (defenses.nf_quantizer): the codebook's shape, the
round-trip error bound, exact absmax, idempotence, the official tie rule, input errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.core.errors import InvalidParameterError
from defenses.nf_quantizer import (
    NF_OFFSET,
    QuantizedTensor,
    dequantize,
    max_half_gap,
    max_roundtrip_error,
    nf_codebook,
    quantize_blockwise,
    quantize_dequantize,
)

BITS = st.integers(2, 8)
BLOCKS = st.sampled_from([1, 2, 3, 7, 16, 64, 100])
# zero, or a normal float32 magnitude far from under/overflow: scale * smallest level stays normal
TINY, HUGE = 2.0**-100, 2.0**100
VALUES = st.one_of(st.just(0.0), st.floats(TINY, HUGE, width=32), st.floats(-HUGE, -TINY, width=32))


@st.composite
def tensors(draw):
    """Either hypothesis-chosen entries (adversarial: ties, zeros, huge ranges) or a seeded
    normal tensor of a random shape and magnitude (realistic weights)."""
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    if draw(st.booleans()):
        return torch.tensor(draw(st.lists(VALUES, min_size=1, max_size=300)), dtype=dtype)
    shape = tuple(draw(st.lists(st.integers(1, 12), min_size=1, max_size=3)))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    return (torch.randn(shape, generator=g, dtype=dtype) * 10.0 ** draw(st.integers(-6, 6))).to(dtype)


def entry_bound(q):
    """The per-entry bound plus the floating-point slack of a few ulps of the block's scale."""
    eps = torch.finfo(q.scales.dtype).eps
    return q.per_entry(max_roundtrip_error(q)) + q.per_entry(q.scales) * 4 * eps


# -- codebook ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", range(2, 9))
def test_codebook_has_2_pow_b_plus_1_sorted_symmetric_levels_with_exact_zero_and_ones(bits):
    c = nf_codebook(bits)
    assert c.shape == (2**bits + 1,) and c.dtype == torch.float64
    assert bool((c[1:] > c[:-1]).all())
    assert c[0].item() == -1.0 and c[-1].item() == 1.0 and c[2 ** (bits - 1)].item() == 0.0
    assert bool((c.abs() <= 1).all()) and torch.equal(c, -c.flip(0))


def test_codebook_levels_are_normal_quantiles():
    """Positive level k is ndtri(p_k) / ndtri(offset), p_k equally spaced from offset to 0.5
    (0.5 itself dropped), checked against scipy's quantile function."""
    norm = pytest.importorskip("scipy.stats").norm
    for bits in (2, 4, 8):
        half = 2 ** (bits - 1)
        probs = [NF_OFFSET + (0.5 - NF_OFFSET) * k / half for k in range(half)]
        positive = sorted(norm.ppf(p) / norm.ppf(NF_OFFSET) for p in probs)
        assert nf_codebook(bits)[half + 1:].tolist() == pytest.approx(positive, abs=1e-12)


def test_nf4_known_values():
    c = nf_codebook(4)
    assert c.numel() == 17 and c[9].item() == pytest.approx(0.0795803, abs=1e-6)
    assert c[15].item() == pytest.approx(0.7229567, abs=1e-6)
    assert max_half_gap(c) == pytest.approx((1 - 0.7229567) / 2, abs=1e-6)


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(w=tensors(), bits=BITS, block=BLOCKS)
def test_round_trip_error_within_the_codebook_bound_and_absmax_exact(w, bits, block):
    q = quantize_blockwise(w, bits, block)
    d = dequantize(q)
    assert d.shape == w.shape and d.dtype == w.dtype
    assert q.scales.shape == (math.ceil(w.numel() / block),)
    assert bool(((w - d).abs() <= entry_bound(q)).all())
    # absmax preserved exactly: each block's largest |entry| comes back bit for bit
    for b, s in enumerate(q.scales.tolist()):
        wb, db = w.reshape(-1)[b * block:(b + 1) * block], d.reshape(-1)[b * block:(b + 1) * block]
        i = int(wb.abs().argmax())
        assert db[i].item() == wb[i].item() and s == abs(wb[i].item())
        assert db.abs().max().item() == s


@settings(max_examples=80, deadline=None)
@given(w=tensors(), bits=BITS, block=BLOCKS)
def test_quantizing_a_dequantized_tensor_gives_it_back_exactly(w, bits, block):
    q = quantize_blockwise(w, bits, block)
    d = dequantize(q)
    q2 = quantize_blockwise(d, bits, block)
    assert torch.equal(q2.codes, q.codes) and torch.equal(q2.scales, q.scales)
    assert torch.equal(dequantize(q2), d)


@settings(max_examples=40, deadline=None)
@given(w=tensors(), bits=BITS, block=BLOCKS)
def test_dequantized_values_are_codebook_levels_times_scale(w, bits, block):
    q = quantize_blockwise(w, bits, block)
    assert q.codes.dtype == (torch.uint8 if bits <= 7 else torch.int16) and q.codes.shape == w.shape
    assert int(q.codes.min()) >= 0 and int(q.codes.max()) <= 2**bits
    levels = nf_codebook(bits).to(q.scales.dtype)
    expected = levels[q.codes.long()] * q.per_entry(q.scales)
    assert torch.equal(dequantize(q), expected.to(w.dtype))


def test_nearest_level_and_ties_go_to_the_lower_level():
    c = nf_codebook(2).float()  # [-1, -a, 0, a, 1]
    mid = ((c[2] + c[3]) / 2).item()
    w = torch.tensor([1.0, mid, -mid, 0.0, c[3].item() + 1e-3, 0.99])
    d = quantize_dequantize(w, 2, block=6)
    assert d.tolist() == pytest.approx([1.0, 0.0, -c[3].item(), 0.0, c[3].item(), 1.0])


def test_zero_block_partial_last_block_and_empty_tensor():
    w = torch.cat([torch.zeros(4), torch.tensor([3.0, -1.5, 0.2])])
    q = quantize_blockwise(w, 4, block=4)
    assert q.scales.tolist() == [0.0, 3.0]
    d = dequantize(q)
    assert torch.equal(d[:4], torch.zeros(4)) and d[4].item() == 3.0 and not d.isnan().any()
    empty = quantize_blockwise(torch.zeros(0, 3), 4)
    assert dequantize(empty).shape == (0, 3) and empty.scales.numel() == 0


def test_layout_is_the_stored_row_major_order():
    w = torch.tensor([[1.0, 100.0], [2.0, 200.0]])
    assert quantize_blockwise(w, 4, block=2).scales.tolist() == [100.0, 200.0]
    assert quantize_blockwise(w.t().contiguous(), 4, block=2).scales.tolist() == [2.0, 200.0]


def test_max_roundtrip_error_from_scales_and_codebook():
    w = torch.randn(10, 10, generator=torch.Generator().manual_seed(3))
    q = quantize_blockwise(w, 3, 16)
    assert torch.equal(max_roundtrip_error(q), max_roundtrip_error(q.scales, nf_codebook(3)))
    assert torch.equal(max_roundtrip_error(q), q.scales * max_half_gap(nf_codebook(3)))


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 0, -3, 9, 2.5, "x", None, True])
def test_bad_bits_is_an_error_naming_bits(bits):
    with pytest.raises(InvalidParameterError, match="'bits'"):
        quantize_blockwise(torch.ones(4), bits)
    with pytest.raises(InvalidParameterError, match="'bits'"):
        nf_codebook(bits)


@pytest.mark.parametrize("block", [0, -1, 1.5, "big", None])
def test_bad_block_is_an_error_naming_block(block):
    with pytest.raises(InvalidParameterError, match="'block'"):
        quantize_blockwise(torch.ones(4), 4, block)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_an_error_naming_w(bad):
    with pytest.raises(InvalidParameterError, match="'w'.*finite"):
        quantize_blockwise(torch.tensor([1.0, bad]), 4)


@pytest.mark.parametrize("w", [torch.ones(3, dtype=torch.long), [1.0, 2.0], None])
def test_non_float_tensors_are_an_error_naming_w(w):
    with pytest.raises(InvalidParameterError, match="'w'"):
        quantize_blockwise(w, 4)


def test_other_errors_name_their_parameter():
    with pytest.raises(InvalidParameterError, match="'offset'"):
        nf_codebook(4, offset=0.5)
    with pytest.raises(InvalidParameterError, match="'q'"):
        dequantize(torch.ones(3))
    with pytest.raises(InvalidParameterError, match="'codebook'"):
        max_roundtrip_error(torch.ones(3))
    with pytest.raises(InvalidParameterError, match="'codebook'"):
        max_half_gap(torch.tensor([1.0, 0.0]))
    assert isinstance(quantize_blockwise(torch.ones(3), 2), QuantizedTensor)
