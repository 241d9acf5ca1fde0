"""FedQSN: the proxy a client receives (quantized, masked: fresh client masks, a fixed server
mask), what it trains, and the averaging of returned models; no DP claim; bad parameters."""

import copy

import pytest
import torch

from audit.data.registry import create_dataset
from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from audit.fl.simulation import FederatedSimulation
from audit.core.updates import ClientData
from defenses.nf_quantizer import quantize_dequantize


def _setup(name="tiny-lm", **model_params):
    if name == "tiny-lm":
        ds = create_dataset("records", num_items=48, length=24, clients=4, canaries=0)
    else:
        ds = create_dataset("digits", size=16)
    torch.manual_seed(0)
    model = create_model(name, input_shape=ds.input_shape, num_classes=ds.num_classes,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std, **model_params)
    clients = [ClientData(ds.images[i * 8:(i + 1) * 8], ds.labels[i * 8:(i + 1) * 8]) for i in range(4)]
    return ds, model, clients


def _defense(model, **params):
    d = DEFENSES.create("fedqsn", **params)
    d.prepare(FederationSchedule(4, 4, 2))
    d.setup_server(model=model, public=None)
    return d


def test_proxy_is_quantized_and_masks_are_fresh_per_client_and_round():
    _, model, _ = _setup(layers=1, hidden=32, heads=2)
    d = _defense(model, p1=0.25, p2=0.25, bits=3)
    a = d.client_model(model, client_id=0, round=0)[1]
    b = d.client_model(model, client_id=1, round=0)[1]
    c = d.client_model(model, client_id=0, round=1)[1]
    weights = dict(model.named_parameters())
    for name in a.quantized:
        assert torch.equal(a.state[name], quantize_dequantize(weights[name].detach(), 3, 64))
    for la, lb, lc in zip(a.masked, b.masked, c.masked):
        server = d.server_keep[la.weight]
        n = server.numel()
        for layer in (la, lb, lc):
            assert not (layer.keep & ~server).any()  # never unmasks a server-masked unit
            assert int((server & ~layer.keep).sum()) == min(int(0.25 * n), int(server.sum()))
        # fresh per client and per round (equal with probability < 1e-3 for these sizes)
        assert not torch.equal(la.keep, lb.keep) and not torch.equal(la.keep, lc.keep)
        assert la.scale == pytest.approx(1 / 0.75 ** 2)


def test_activation_mask_zeroes_masked_units_and_weights_mode_folds_it_in():
    _, model, clients = _setup(layers=1, hidden=32, heads=2)
    d = _defense(model, p1=0.3, p2=0.3)
    proxy, shipped = d.client_model(model, client_id=0, round=0)
    layer = next(m for m in shipped.masked if "mlp.c_proj" in m.weight)
    module = dict(proxy.named_modules())[layer.weight.rsplit(".", 1)[0]]
    seen = {}
    module.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    proxy(clients[0].images)
    out = seen["out"]
    assert torch.all(out[..., ~layer.keep] == 0) and out[..., layer.keep].abs().sum() > 0
    # the whole weights are still in the client's model: the mask only acts in forward
    assert torch.equal(shipped.state[layer.weight], dict(proxy.named_parameters())[layer.weight].detach())

    dw = _defense(model, p1=0.3, p2=0.3, mask_mode="weights")
    _, shipped_w = dw.client_model(model, client_id=0, round=0)
    lw = next(m for m in shipped_w.masked if "mlp.c_proj" in m.weight)
    assert lw.keep is None  # the mask itself is not shipped
    w = shipped_w.state[lw.weight]
    zero_units = (w.abs().sum(0) == 0) & (shipped_w.state[lw.bias] == 0)
    assert torch.equal(zero_units, ~dw._client_keeps[(0, 0)][lw.weight])


def test_without_masks_and_at_8_bits_fedqsn_is_close_to_fedavg():
    ds, model, clients = _setup(layers=1, hidden=32, heads=2)
    finals = {}
    for name, params in (("fedavg", {}), ("fedqsn", {"p1": 0.0, "p2": 0.0, "bits": 8, "return_bits": 8})):
        m = copy.deepcopy(model)
        d = DEFENSES.create(name, local_steps=2, lr=0.5, **params)
        schedule = FederationSchedule(4, 4, 2)
        d.prepare(schedule)
        FederatedSimulation(model=m, clients=clients, defense=d, schedule=schedule).run()
        finals[name] = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
    base = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    moved = (finals["fedavg"] - base).norm()
    # 8-bit quantization of the attention/FFN weights: measured 1.1% of FedAvg's movement
    assert (finals["fedqsn"] - finals["fedavg"]).norm() < 0.1 * moved


def test_server_masked_units_are_never_trained_in_activation_mode():
    _, model, clients = _setup(layers=1, hidden=32, heads=2)
    d = DEFENSES.create("fedqsn", p1=0.5, p2=0.0, bits=8, return_bits=8, local_steps=2, lr=0.5)
    schedule = FederationSchedule(4, 4, 1)
    d.prepare(schedule)
    m = copy.deepcopy(model)
    FederatedSimulation(model=m, clients=clients, defense=d, schedule=schedule).run()
    name = next(n for n in d.server_keep if "mlp.c_proj" in n)
    keep = d.server_keep[name]
    before = quantize_dequantize(dict(model.named_parameters())[name].detach(), 8, 64)
    after = dict(m.named_parameters())[name].detach()
    # masked columns only go through the 8-bit codebook twice; kept ones are trained
    assert (after[:, ~keep] - before[:, ~keep]).abs().max() < 0.05 * before.abs().max()
    assert (after[:, keep] - before[:, keep]).abs().max() > 0.05 * before.abs().max()


def test_vit_runs_and_the_claim_says_no_dp():
    _, model, clients = _setup("vit", hidden=32, layers=1, heads=2)
    d = DEFENSES.create("fedqsn", local_steps=1, lr=0.1)
    schedule = FederationSchedule(4, 4, 1)
    d.prepare(schedule)
    FederatedSimulation(model=model, clients=clients, defense=d, schedule=schedule).run()
    claim = d.claim(schedule)
    assert not claim.has_dp and "no differential-privacy claim" in claim.statement


@pytest.mark.parametrize("params, word", [({"p1": 1.0}, "'p1'"), ({"p2": -0.1}, "'p2'"),
                                          ({"bits": 1}, "'bits'"), ({"return_bits": 9}, "'return_bits'"),
                                          ({"mask_mode": "both"}, "'mask_mode'"), ({"q": 1}, "'q'")])
def test_bad_parameters_name_themselves(params, word):
    with pytest.raises(InvalidParameterError, match=word):
        DEFENSES.create("fedqsn", **params)


def test_a_model_without_transformer_layers_is_refused():
    ds = create_dataset("digits", size=16)
    model = create_model("convnet", input_shape=ds.input_shape, num_classes=ds.num_classes,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std)
    d = DEFENSES.create("fedqsn")
    with pytest.raises(InvalidParameterError, match="tiny-lm"):
        d.setup_server(model=model, public=None)
