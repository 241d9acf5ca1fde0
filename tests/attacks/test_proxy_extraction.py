"""Model extraction against FedQSN (attacks.proxy_extraction): proxies built by hand from a
tiny-lm with defenses.unit_masks and defenses.nf_quantizer; exact recovery from a covering
coalition, server-masked units never seen, only the codebook's error left, the seen
fraction growing with the coalition, activation mode leaking the whole quantized model,
stale values from earlier rounds, fine-tuning, metrics and errors."""

import pytest
import torch

from attacks.proxy_extraction import (
    effective_state,
    estimate_global,
    extraction_metrics,
    fine_tune,
    infer_keep,
    unit_rounds,
)
from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from audit.core.updates import ClientData
from defenses.nf_quantizer import max_roundtrip_error, quantize_blockwise, quantize_dequantize
from defenses.proxy_model import MaskedLayer, ShippedProxy
from defenses.unit_masks import apply_unit_mask, client_mask, fedqsn_layers, inverted_dropout_scale, server_mask

WTE = "lm.transformer.wte.weight"
HEAD = "lm.lm_head.weight"
BITS, BLOCK = 4, 64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("tiny-lm", input_shape=(32,), num_classes=259, channel_mean=(0.0,), channel_std=(1.0,),
                        layers=1, hidden=32, heads=2)


@pytest.fixture(scope="module")
def specs(model):
    return fedqsn_layers(model)


def make_global(model, seed=0):
    """A 'trained' global state: the init plus noise (so biases are not zero), LM head tied."""
    g = gen(seed)
    state = {k: v.detach().clone() + 0.02 * torch.randn(v.shape, generator=g) for k, v in model.state_dict().items()
             if k != HEAD}
    state[HEAD] = state[WTE]
    return state


def masked_specs(specs):
    return [s for s in specs.values() if s.masked]


def draw_server_keep(specs, p1, seed=1):
    g = gen(seed)
    return {s.name: server_mask(s.n_units, p1, g) for s in masked_specs(specs)}


def make_proxy(global_state, specs, server_keep, *, p1, p2, g=None, mode="weights", bits=None, rnd=0, client_id=0,
               order="quantize-first", keeps=None):
    """What one client receives (as defenses.fedqsn would ship it)."""
    state = {k: v.clone() for k, v in global_state.items() if k != HEAD}
    state[HEAD] = state[WTE]
    quantized = tuple(s.name for s in specs.values() if s.quantized) if bits else ()

    def quantize():
        for name in quantized:
            state[name] = quantize_dequantize(state[name], bits, BLOCK)

    if order == "quantize-first":
        quantize()
    scale = inverted_dropout_scale(p1, p2)
    masked = []
    for s in masked_specs(specs):
        keep = keeps[s.name] if keeps is not None else client_mask(server_keep[s.name], p2, g)
        if mode == "weights":
            w, b = apply_unit_mask(state[s.name], state.get(s.bias), keep, scale, s.unit_dim)
            state[s.name] = w
            if b is not None:
                state[s.bias] = b
            for tied in s.tied:
                state[f"{tied}.weight"] = w
        masked.append(MaskedLayer(s.name, s.bias, s.unit_dim, scale, keep if mode == "activation" else None))
    if order == "mask-first":
        quantize()
    return ShippedProxy(round=rnd, client_id=client_id, state=state, masked=tuple(masked), quantized=quantized,
                        mask_mode=mode, bits=bits or 0, block=BLOCK)


def coalition(global_state, specs, server_keep, k, *, p1, p2, seed=2, **kw):
    g = gen(seed)
    return [make_proxy(global_state, specs, server_keep, p1=p1, p2=p2, g=g, client_id=c, **kw) for c in range(k)]


def units(t, unit_dim):
    return t.movedim(unit_dim % t.dim(), 0)


# -- (a) exact recovery ---------------------------------------------------------------------------


def test_covering_coalition_recovers_the_global_exactly(model, specs):
    glob = make_global(model)
    server_keep = draw_server_keep(specs, 0.0)
    proxies = coalition(glob, specs, server_keep, 12, p1=0.0, p2=0.5)
    for s in masked_specs(specs):  # precondition: together the client masks cover every unit
        covered = torch.zeros(s.n_units, dtype=torch.bool)
        for p in proxies:
            covered |= infer_keep(p.state, next(m for m in p.masked if m.weight == s.name))
        assert bool(covered.all())
    estimate, seen = estimate_global(proxies)
    assert set(estimate) == set(glob)
    assert set(seen) == {s.name for s in masked_specs(specs)} and all(bool(v.all()) for v in seen.values())
    for name, true in glob.items():
        assert torch.allclose(estimate[name], true, rtol=1e-6, atol=1e-8), name
    assert torch.equal(estimate[HEAD], estimate[WTE])  # the tied head gets the embedding's estimate
    m = extraction_metrics(estimate, glob, specs, server_keep, seen=seen)
    assert m["rel_error"] < 1e-6 and m["cosine"] > 1 - 1e-9
    assert m["seen_fraction"] == 1.0 and m["server_kept_fraction"] == 1.0
    single = extraction_metrics(proxies[0].state, glob, specs, server_keep)  # trivial baseline: one proxy
    assert single["rel_error"] > 100 * m["rel_error"]
    # each masked unit was inferred correctly: the inferred keep of a proxy is its client mask
    g = gen(2)
    first_keep = {s.name: client_mask(server_keep[s.name], 0.5, g) for s in masked_specs(specs)}
    for ml in proxies[0].masked:
        assert torch.equal(infer_keep(proxies[0].state, ml), first_keep[ml.weight])


# -- (b) server-masked units, quantization error ---------------------------------------------------


@pytest.mark.parametrize("order", ["quantize-first", "mask-first"])
def test_server_masked_units_never_seen_and_only_quantization_error_left(model, specs, order):
    p1, p2 = 0.3, 0.25
    glob = make_global(model)
    server_keep = draw_server_keep(specs, p1)
    proxies = coalition(glob, specs, server_keep, 16, p1=p1, p2=p2, bits=BITS, order=order)
    estimate, seen = estimate_global(proxies)
    quantized = {s.name for s in specs.values() if s.quantized}
    for s in masked_specs(specs):
        assert not bool((seen[s.name] & ~server_keep[s.name]).any())  # never a server-masked unit
        assert torch.equal(seen[s.name], server_keep[s.name])  # a large coalition sees all others
        masked_rows = units(estimate[s.name], s.unit_dim)[~server_keep[s.name]]
        assert bool((masked_rows == 0).all())  # always-masked units are filled with zeros
        if s.bias is not None:
            assert bool((estimate[s.bias][~server_keep[s.name]] == 0).all())
    for name, true in glob.items():
        est = estimate[name]
        spec = specs.get(name)
        if name in quantized:
            q = quantize_blockwise(true, BITS, BLOCK)
            bound = q.per_entry(max_roundtrip_error(q))
            err = (est - true).abs()
            if spec is not None and spec.masked:
                err = units(err, spec.unit_dim)[server_keep[name]]
                bound = units(bound, spec.unit_dim)[server_keep[name]]
            assert bool((err <= bound * (1 + 1e-5) + 1e-7).all()), name
            if order == "quantize-first":  # the estimate is exactly the quantized global (to float rounding)
                qt = quantize_dequantize(true, BITS, BLOCK)
                if spec is not None and spec.masked:
                    qt = torch.where(server_keep[name].reshape(1, -1), qt, torch.zeros(()))  # conv1d: units are columns
                assert torch.allclose(est, qt, rtol=1e-6, atol=1e-9), name
        else:
            keep = None
            if spec is not None and spec.masked:
                keep = server_keep[name]
            elif name == HEAD:
                keep = server_keep[WTE]
            elif any(s.bias == name for s in masked_specs(specs)):
                keep = server_keep[next(s.name for s in masked_specs(specs) if s.bias == name)]
            if keep is None:
                assert torch.equal(est, true), name
            elif est.dim() == 1:
                assert torch.allclose(est[keep], true[keep], rtol=1e-6, atol=1e-9), name
            else:
                assert torch.allclose(est[:, keep], true[:, keep], rtol=1e-6, atol=1e-9), name
    m = extraction_metrics(estimate, glob, specs, server_keep, seen=seen)
    assert m["seen_fraction"] == pytest.approx(m["server_kept_fraction"])
    assert abs(m["seen_fraction"] - (1 - p1)) < 0.15
    assert m["seen_fraction_server_kept"] == 1.0 and m["seen_fraction_server_masked"] == 0.0
    assert m["rel_error_unmasked"] < 0.1 and m["cosine_unmasked"] > 0.99
    assert m["rel_error"] > m["rel_error_unmasked"]  # the server-masked units are lost
    single = extraction_metrics(proxies[0].state, glob, specs, server_keep)
    assert single["rel_error_unmasked"] > 2 * m["rel_error_unmasked"]


# -- (c) coalition size ----------------------------------------------------------------------------


def test_seen_fraction_grows_with_the_coalition(model, specs):
    glob = make_global(model)
    server_keep = draw_server_keep(specs, 0.2)
    proxies = coalition(glob, specs, server_keep, 4, p1=0.2, p2=0.5)
    fractions, errors = [], []
    for k in (1, 2, 4):
        estimate, seen = estimate_global(proxies[:k])
        m = extraction_metrics(estimate, glob, specs, server_keep, seen=seen)
        fractions.append(m["seen_fraction"])
        errors.append(m["rel_error_unmasked"])
    assert fractions[0] < fractions[1] < fractions[2] <= 1.0
    assert errors[0] > errors[1] > errors[2]


# -- (d) activation mode ---------------------------------------------------------------------------


def test_activation_mode_leaks_the_whole_quantized_global(model, specs):
    p1, p2 = 0.5, 0.5
    glob = make_global(model)
    server_keep = draw_server_keep(specs, p1)
    proxies = coalition(glob, specs, server_keep, 2, p1=p1, p2=p2, mode="activation", bits=BITS)
    assert all(m.keep is not None for m in proxies[0].masked)
    quantized = {s.name for s in specs.values() if s.quantized}
    for k in (1, 2):
        estimate, seen = estimate_global(proxies[:k])
        for name, true in glob.items():
            expected = quantize_dequantize(true, BITS, BLOCK) if name in quantized else true
            assert torch.equal(estimate[name], expected), name
        assert all(bool(v.all()) for v in seen.values())
        m = extraction_metrics(estimate, glob, specs, server_keep, seen=seen)
        assert m["seen_fraction"] == 1.0 and m["seen_fraction_server_masked"] == 1.0
        assert m["rel_error"] == pytest.approx(m["rel_error_unmasked"], rel=0.5)  # nothing is lost but precision
    # the baseline: the proxy as its client uses it is the weights-mode proxy of the same masks
    keeps = {ml.weight: ml.keep for ml in proxies[0].masked}
    folded = make_proxy(glob, specs, server_keep, p1=p1, p2=p2, mode="weights", bits=BITS, keeps=keeps)
    used = effective_state(proxies[0])
    assert set(used) == set(folded.state)
    for name, t in folded.state.items():
        assert torch.equal(used[name], t), name
    assert effective_state(folded).keys() == folded.state.keys()
    base = extraction_metrics(used, glob, specs, server_keep)
    assert base["rel_error_unmasked"] > 5 * m["rel_error_unmasked"]


# -- (e) stale values ------------------------------------------------------------------------------


def test_units_not_seen_in_the_latest_round_take_stale_values(model, specs):
    old, new = make_global(model, seed=10), make_global(model, seed=11)
    server_keep = draw_server_keep(specs, 0.0)
    first_half = {s.name: torch.arange(s.n_units) < s.n_units // 2 for s in masked_specs(specs)}
    all_but_last = {s.name: torch.arange(s.n_units) < s.n_units - 1 for s in masked_specs(specs)}
    proxies = [
        make_proxy(new, specs, server_keep, p1=0.0, p2=0.5, rnd=3, client_id=7, keeps=first_half),
        make_proxy(old, specs, server_keep, p1=0.0, p2=0.0, rnd=1, client_id=7, keeps=all_but_last),
        make_proxy(old, specs, server_keep, p1=0.0, p2=0.5, rnd=1, client_id=2, keeps=first_half),
    ]
    for order in (proxies, proxies[::-1]):  # the input order does not matter
        estimate, seen = estimate_global(order)
        rounds = unit_rounds(order)
        for s in masked_specs(specs):
            half, n = s.n_units // 2, s.n_units
            est, fresh, stale = (units(t[s.name], s.unit_dim) for t in (estimate, new, old))
            assert torch.allclose(est[:half], fresh[:half], rtol=1e-6, atol=1e-9)
            assert torch.allclose(est[half:n - 1], stale[half:n - 1], rtol=1e-6, atol=1e-9)
            assert bool((est[n - 1] == 0).all())
            assert seen[s.name].tolist() == [True] * (n - 1) + [False]
            assert rounds[s.name].tolist() == [3] * half + [1] * (n - 1 - half) + [-1]
            if s.bias is not None:
                b = estimate[s.bias]
                assert torch.allclose(b[:half], new[s.bias][:half], rtol=1e-6, atol=1e-9)
                assert torch.allclose(b[half:n - 1], old[s.bias][half:n - 1], rtol=1e-6, atol=1e-9)
                assert b[n - 1] == 0
        # unmasked parameters come from the latest round
        assert torch.equal(estimate["lm.transformer.wpe.weight"], new["lm.transformer.wpe.weight"])
        assert torch.equal(estimate[HEAD], estimate[WTE])


# -- fine-tuning, metrics, errors ------------------------------------------------------------------


def test_fine_tune_lowers_the_coalition_loss_and_leaves_the_model(model, specs):
    glob = make_global(model)
    server_keep = draw_server_keep(specs, 0.3)
    estimate, _ = estimate_global(coalition(glob, specs, server_keep, 4, p1=0.3, p2=0.25))
    ids = torch.randint(0, 256, (4, 32), generator=gen(5))
    targets = torch.full_like(ids, -100)
    targets[:, :-1] = ids[:, 1:]
    data = ClientData(ids, targets)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = fine_tune(model, estimate, data, steps=3, lr=0.5)
    assert set(tuned) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])

    def loss(state):
        m = create_model("tiny-lm", input_shape=(32,), num_classes=259, channel_mean=(0.0,), channel_std=(1.0,),
                         layers=1, hidden=32, heads=2)
        m.load_state_dict(state)
        with torch.no_grad():
            return float(torch.nn.CrossEntropyLoss()(m(ids), targets))

    assert loss(tuned) < loss(estimate)
    assert torch.equal(tuned[HEAD], tuned[WTE])
    # a state from named_parameters() (the tied head listed once, as defenses.fedqsn ships it)
    params_only = {k: v for k, v in estimate.items() if k != HEAD}
    assert torch.equal(fine_tune(model, params_only, data, steps=3, lr=0.5)[WTE], tuned[WTE])
    with pytest.raises(InvalidParameterError):
        fine_tune(model, {k: v for k, v in params_only.items() if k != WTE}, data, steps=1, lr=0.5)
    with pytest.raises(InvalidParameterError):
        fine_tune(model, {**estimate, "extra": torch.zeros(1)}, data, steps=1, lr=0.5)


def test_metrics_conventions(model, specs):
    glob = make_global(model)
    m = extraction_metrics(glob, glob, specs)
    assert m == {"rel_error": 0.0, "cosine": pytest.approx(1.0)}
    zero = {k: torch.zeros_like(v) for k, v in glob.items()}
    m = extraction_metrics(zero, glob, [s for s in specs.values()])
    assert m["rel_error"] == pytest.approx(1.0) and m["cosine"] == 0.0
    with pytest.raises(InvalidParameterError):
        extraction_metrics({}, glob, specs)
    with pytest.raises(InvalidParameterError):
        extraction_metrics(glob, glob, specs, {"nope.weight": torch.ones(3, dtype=torch.bool)})


def test_bad_proxies(model, specs):
    glob = make_global(model)
    server_keep = draw_server_keep(specs, 0.0)
    with pytest.raises(InvalidParameterError):
        estimate_global([])
    with pytest.raises(InvalidParameterError):
        estimate_global([glob])
    weights = make_proxy(glob, specs, server_keep, p1=0.0, p2=0.5, g=gen(0))
    activation = make_proxy(glob, specs, server_keep, p1=0.0, p2=0.5, g=gen(0), mode="activation", client_id=1)
    with pytest.raises(InvalidParameterError):
        estimate_global([weights, activation])
    with pytest.raises(InvalidParameterError):
        estimate_global(weights)
