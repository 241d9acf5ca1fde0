"""FedQSN's hidden-unit masks (defenses.unit_masks): exact counts, Bernoulli server mask,
fresh client masks that never unmask a server-masked unit, inverted-dropout scaling,
equivalence with the official activation mask, the layers of tiny-lm and vit, errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from defenses.unit_masks import (
    apply_unit_mask,
    client_mask,
    fedqsn_layers,
    inverted_dropout_scale,
    server_mask,
)

RATES = st.floats(0, 0.99)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- counts ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), p1=RATES, p2=RATES, seed=st.integers(0, 2**31))
def test_exact_counts_and_client_mask_inside_server_mask(n, p1, p2, seed):
    g = gen(seed)
    keep = server_mask(n, p1, g, exact=True)
    assert keep.dtype == torch.bool and keep.shape == (n,)
    assert int((~keep).sum()) == int(p1 * n)
    surviving = int(keep.sum())
    total = client_mask(keep, p2, g)  # official: int(p2 * n), n = all units
    assert int((keep & ~total).sum()) == min(int(p2 * n), surviving)
    among = client_mask(keep, p2, g, count="surviving")
    assert int((keep & ~among).sum()) == int(p2 * surviving)
    bern = client_mask(keep, p2, g, count="bernoulli")
    for c in (total, among, bern):  # never unmask a server-masked unit
        assert c.shape == keep.shape and not bool((c & ~keep).any())


def test_counts_pool_over_a_mask_of_several_layers_as_the_official_code():
    """The official per-block mask is one (n_layer, n_embd) array: int(p2 * n_layer * n_embd)
    zeros in all, not per layer."""
    keep = server_mask((3, 50), 0.2, gen(1), exact=True)
    assert keep.shape == (3, 50) and int((~keep).sum()) == int(0.2 * 150)
    c = client_mask(keep, 0.3, gen(2))
    assert int((keep & ~c).sum()) == int(0.3 * 150)


def test_client_count_is_capped_at_the_survivors():
    keep = server_mask(10, 0.8, gen(0), exact=True)  # 2 survivors, int(0.9 * 10) = 9 asked
    assert not bool(client_mask(keep, 0.9, gen(0)).any())


def test_bernoulli_server_mask_rate():
    """Default server mask: each unit masked with probability p1 (the official code). The
    masked count is Binomial(200000, 0.3): within 5 standard deviations except w.p. < 1e-6."""
    n, p1 = 200_000, 0.3
    masked = int((~server_mask(n, p1, gen(5))).sum())
    assert abs(masked - n * p1) < 5 * math.sqrt(n * p1 * (1 - p1))
    counts = {int((~server_mask(40, 0.5, gen(s))).sum()) for s in range(20)}
    assert len(counts) > 1  # not a fixed count
    c = client_mask(server_mask(n, 0.0, gen(6)), 0.25, gen(7), count="bernoulli")
    assert abs(int((~c).sum()) - n * 0.25) < 5 * math.sqrt(n * 0.25 * 0.75)


def test_zero_rate_masks_nothing():
    for exact in (False, True):
        assert bool(server_mask(64, 0.0, gen(0), exact=exact).all())
    keep = server_mask(64, 0.5, gen(0), exact=True)
    for count in ("total", "surviving", "bernoulli"):
        assert torch.equal(client_mask(keep, 0.0, gen(1), count=count), keep)
    w, b = torch.randn(64, 8), torch.randn(64)
    w2, b2 = apply_unit_mask(w, b, torch.ones(64, dtype=torch.bool), 1.0, 0)
    assert torch.equal(w2, w) and torch.equal(b2, b)


# -- freshness and determinism -----------------------------------------------------------------


def test_client_masks_are_fresh_per_client_and_round():
    """32 survivors, 16 of them zeroed (int(0.25 * 64)): two independent draws coincide with
    probability 1 / C(32, 16) = 1.7e-9, so any of the 190 pairs of 20 draws (4 clients x 5
    rounds) coincides with probability < 3.2e-7 (union bound); the seed fixes the outcome."""
    keep = server_mask(64, 0.5, gen(0), exact=True)
    g = gen(1)
    draws = [client_mask(keep, 0.25, g) for _round in range(5) for _client in range(4)]
    assert 190 / math.comb(32, 16) < 3.2e-7
    assert len({tuple(d.tolist()) for d in draws}) == len(draws)
    assert all(int((keep & ~d).sum()) == 16 for d in draws)


def test_seeded_generators_are_deterministic():
    for exact in (False, True):
        a, b = (server_mask(100, 0.3, gen(9), exact=exact) for _ in range(2))
        assert torch.equal(a, b)
    keep = server_mask(100, 0.3, gen(9))
    for count in ("total", "surviving", "bernoulli"):
        assert torch.equal(client_mask(keep, 0.4, gen(3), count=count), client_mask(keep, 0.4, gen(3), count=count))
    assert not torch.equal(client_mask(keep, 0.4, gen(3)), client_mask(keep, 0.4, gen(4)))


# -- applying a mask ---------------------------------------------------------------------------


def test_scaling_is_inverted_dropout():
    assert inverted_dropout_scale(0.2) == pytest.approx(1.25)
    assert inverted_dropout_scale(0.5, 0.2) == pytest.approx(1 / (0.5 * 0.8))
    assert inverted_dropout_scale() == 1.0
    w, b = torch.randn(6, 4), torch.randn(6)
    keep = torch.tensor([True, False, True, True, False, True])
    w2, b2 = apply_unit_mask(w, b, keep, inverted_dropout_scale(0.25), 0)
    assert torch.equal(w2[~keep], torch.zeros(2, 4)) and torch.equal(b2[~keep], torch.zeros(2))
    assert torch.allclose(w2[keep], w[keep] / 0.75) and torch.allclose(b2[keep], b[keep] / 0.75)
    assert not torch.equal(w2, w)  # a new tensor, the input untouched
    assert (w2[~keep] == 0).all() and not torch.signbit(w2[~keep]).any()  # +0, not -0


def _official_mask(out, keep, scale):
    """The official code: the layer's output activations times the mask vector."""
    return out * (keep.to(out.dtype) * scale)


def test_linear_units_are_rows_and_equal_the_official_activation_mask():
    lin = nn.Linear(5, 7)
    keep, x = server_mask(7, 0.4, gen(2), exact=True), torch.randn(3, 5)
    w, b = apply_unit_mask(lin.weight.detach(), lin.bias.detach(), keep, 1.5, unit_dim=0)
    assert torch.allclose(nn.functional.linear(x, w, b), _official_mask(lin(x), keep, 1.5), atol=1e-6)


def test_conv1d_units_are_columns_and_equal_the_official_activation_mask():
    from transformers.pytorch_utils import Conv1D

    conv = Conv1D(7, 5)  # GPT-2: nf = 7 outputs, weight stored (5, 7)
    nn.init.normal_(conv.bias)
    keep, x = server_mask(7, 0.4, gen(2), exact=True), torch.randn(2, 3, 5)
    w, b = apply_unit_mask(conv.weight.detach(), conv.bias.detach(), keep, 2.0, unit_dim=1)
    assert torch.allclose(x @ w + b, _official_mask(conv(x), keep, 2.0), atol=1e-6)


def test_embedding_units_are_columns_and_equal_the_official_activation_mask():
    emb = nn.Embedding(11, 6)
    keep, ids = server_mask(6, 0.5, gen(2), exact=True), torch.tensor([[1, 4, 10]])
    w, b = apply_unit_mask(emb.weight.detach(), None, keep, 2.0, unit_dim=1)
    assert b is None and torch.equal(nn.functional.embedding(ids, w), _official_mask(emb(ids), keep, 2.0))


# -- layers of the project's models ------------------------------------------------------------


def _build(name):
    torch.manual_seed(0)
    if name == "tiny-lm":
        return create_model(name, input_shape=(16,), num_classes=259, channel_mean=(0.0,), channel_std=(1.0,),
                            hidden=32, layers=2, heads=4)
    return create_model(name, input_shape=(1, 16, 16), num_classes=10, channel_mean=[0.3], channel_std=[0.2],
                        hidden=32, layers=2, heads=2, patch=4, mlp=64)


def test_fedqsn_layers_of_tiny_lm():
    specs = fedqsn_layers(_build("tiny-lm"))
    masked = {n: (s.role, s.kind, s.unit_dim, s.n_units) for n, s in specs.items() if s.masked}
    quantized = sorted(n for n, s in specs.items() if s.quantized)
    assert masked == {
        "lm.transformer.wte.weight": ("embedding", "embedding", 1, 32),
        **{f"lm.transformer.h.{i}.attn.c_proj.weight": ("attention-output", "conv1d", 1, 32) for i in (0, 1)},
        **{f"lm.transformer.h.{i}.mlp.c_proj.weight": ("ffn-output", "conv1d", 1, 32) for i in (0, 1)},
    }
    assert quantized == sorted(f"lm.transformer.h.{i}.{m}.weight" for i in (0, 1)
                               for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"))
    wte = specs["lm.transformer.wte.weight"]
    assert wte.tied == ("lm.lm_head",) and wte.bias is None
    assert specs["lm.transformer.h.0.mlp.c_proj.weight"].bias == "lm.transformer.h.0.mlp.c_proj.bias"


def test_fedqsn_layers_of_vit():
    model = _build("vit")
    specs = fedqsn_layers(model)
    masked = {n: (s.role, s.kind, s.unit_dim) for n, s in specs.items() if s.masked}
    prefix = "vit.vit.layers" if any(".layers." in n for n in specs) else "vit.vit.encoder.layer"
    assert masked["vit.vit.embeddings.patch_embeddings.projection.weight"] == ("embedding", "conv2d", 0)
    roles = sorted(s.role for s in specs.values() if s.masked)
    assert roles == ["attention-output"] * 2 + ["embedding"] + ["ffn-output"] * 2
    assert sum(s.quantized for s in specs.values()) == 2 * 6  # q, k, v, o, fc1, fc2 per block
    params = dict(model.named_parameters())
    for s in specs.values():  # every name is a real parameter; units sit where the spec says
        assert params[s.name].shape[s.unit_dim] == s.n_units and (s.bias is None or s.bias in params)
        assert s.kind in ("linear", "conv2d") and s.name.startswith(("vit.vit.embeddings", prefix))


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1.0, 1.5, -0.1, float("nan"), "x", None, True])
def test_bad_rates_are_errors_naming_them(p):
    with pytest.raises(InvalidParameterError, match="'p1'"):
        server_mask(10, p, gen())
    with pytest.raises(InvalidParameterError, match="'p2'"):
        client_mask(torch.ones(10, dtype=torch.bool), p, gen())


def test_other_bad_inputs_name_their_parameter():
    keep = torch.ones(4, dtype=torch.bool)
    for call, name in [
        (lambda: server_mask(0, 0.1), "n_units"),
        (lambda: server_mask(10, 0.1, generator=3), "generator"),
        (lambda: client_mask(torch.ones(4), 0.1), "server_keep"),
        (lambda: client_mask(keep, 0.1, count="some"), "count"),
        (lambda: apply_unit_mask(torch.ones(4, 2), None, torch.ones(3, dtype=torch.bool), 1.0, 0), "keep"),
        (lambda: apply_unit_mask(torch.ones(4, 2), torch.ones(2), keep, 1.0, 0), "bias"),
        (lambda: apply_unit_mask(torch.ones(4, 2), None, keep, 0.0, 0), "scale"),
        (lambda: apply_unit_mask(torch.ones(4, 2), None, keep, 1.0, 2), "unit_dim"),
        (lambda: inverted_dropout_scale(1.0), "rates[0]"),
    ]:
        with pytest.raises(InvalidParameterError, match=f"'{name}'".replace("[", r"\[")):
            call()
