"""The malicious server's attacks (imprint, trap weights): planted and closed-form cases,
what stops them (DP noise) and what does not (clipping, secure aggregation), and the
threat-model checks."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

from attacks.imprint import Imprint, ImprintBlock  # noqa: E402
from attacks.trap_weights import TrapWeights  # noqa: E402
from audit.core.attack import ATTACKS, AttackView, CraftingContext  # noqa: E402
from audit.core.config import AuditConfig  # noqa: E402
from audit.core.errors import InvalidParameterError  # noqa: E402
from audit.core.threat_model import create_threat_model  # noqa: E402
from audit.core.updates import LocalTraining, ModelUpdate, UpdateKind  # noqa: E402
from audit.harness import prepare, run_audit, targets  # noqa: E402
from audit.metrics.scoring import align  # noqa: E402
from cli_run import run  # noqa: E402

CPU = torch.device("cpu")


def per_image_psnr(config: AuditConfig) -> np.ndarray:
    finding = run_audit(config, device=CPU, lpips_scorer=None)
    return np.array(next(m for m in finding["metrics"] if m["name"] == "psnr")["per_item"])


def lfw(defense="fedsgd", attack="imprint", threat_model="malicious-server-secagg", batch=64,
        clients=1, **kw) -> AuditConfig:
    return AuditConfig(defense=defense, attack=attack, dataset="lfw", model="convnet",
                       model_params={"width": 4}, threat_model=threat_model, batch_size=batch,
                       num_targets=clients, **kw)


def test_imprint_recovers_a_batch_of_64_from_the_aggregate():
    # 64 real faces (lfw), one client, the server sees only the aggregate: every image back
    # when no two share a bin (8192 bins: expected share alone exp(-63/8193) = 99.2%)
    p = per_image_psnr(lfw(attack_params={"bins": 8192}))
    assert len(p) == 64 and (p > 40).all(), np.sort(p)[:5]
    # the default 1024 bins: about exp(-63/1025) = 94% alone in a bin
    p = per_image_psnr(lfw())
    assert (p > 40).mean() >= 0.85, np.sort(p)[:8]


def test_imprint_survives_secure_aggregation_of_several_clients_and_clipping():
    # two clients of 32; DP-FedAvg's clipping without noise rescales each update: still exact
    p = per_image_psnr(lfw(defense="dp-fedavg", batch=32, clients=2,
                           defense_params={"noise_multiplier": 0.0, "clip_norm": 1e-3}))
    assert (p > 40).mean() >= 0.9, np.sort(p)[:8]


@pytest.mark.parametrize("mode,threat_model", [("local", "malicious-server"),
                                               ("central", "malicious-server-secagg")])
def test_dp_noise_stops_imprint(mode, threat_model):
    p = per_image_psnr(lfw(defense="dp-fedavg", batch=32, clients=2, threat_model=threat_model,
                           defense_params={"noise_multiplier": 1.0, "mode": mode}))
    assert (p > 40).sum() == 0 and p.mean() < 20, np.sort(p)[-5:]


def test_imprint_ratio_is_exact_for_examples_alone_in_their_bins():
    # closed form: examples with distinct statistics, thresholds between them
    g = torch.Generator().manual_seed(0)
    shape, n = (1, 4, 4), 5
    x = torch.rand(n, *shape, generator=g)
    direction = torch.full((16,), 1 / 16)
    stats, _ = torch.sort(x.flatten(1) @ direction)
    x = x[torch.argsort(x.flatten(1) @ direction)]
    thresholds = torch.cat([stats[:1] - 0.01, (stats[1:] + stats[:-1]) / 2])
    block = ImprintBlock(shape, direction, thresholds, torch.randn(16, generator=g) * 1e-3)
    head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    model = torch.nn.Sequential(block, head)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0, 1]))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    names = [n for n, _ in model.named_parameters()]
    view = AttackView(create_threat_model("malicious-server"), model,
                      ModelUpdate(UpdateKind.GRADIENT, dict(zip(names, grads)), 0, 0, n),
                      LocalTraining(steps=1, lr=0.1), n, shape, 3)
    out = Imprint(tol=1e-6).run(view, generator=g, device=CPU)
    assert out.stats["occupied_bins"] == n
    assert torch.allclose(align(out.images, x), x, atol=1e-5)


def test_imprint_is_deterministic_and_bins_need_public_data():
    cfg = lfw(batch=16, seed=3)
    a = prepare(cfg, device=CPU)
    b = prepare(cfg, device=CPU)
    ta, tb = targets(a)[0], targets(b)[0]
    attack = ATTACKS.create("imprint")
    ra = attack.run(ta.view, generator=torch.Generator().manual_seed(0), device=CPU)
    rb = attack.run(tb.view, generator=torch.Generator().manual_seed(0), device=CPU)
    assert torch.equal(ra.images, rb.images)
    with pytest.raises(InvalidParameterError, match="at least 2 examples"):
        Imprint().craft(torch.nn.Identity(), context=CraftingContext((1, 2, 2), 2, 4, None),
                        generator=torch.Generator())


def test_trap_weights_recover_a_share_of_a_large_batch_that_honest_weights_do_not():
    base = dict(dataset="lfw", model="mlp", model_params={"hidden": 1024}, batch_size=64, num_targets=1)
    trapped = per_image_psnr(AuditConfig(attack="trap-weights", threat_model="malicious-server", **base))
    honest = per_image_psnr(AuditConfig(attack="analytic-fc", threat_model="hbc-server", **base))
    assert (trapped > 40).sum() >= 16, np.sort(trapped)[-20:]
    assert (honest > 40).sum() <= 2 and (trapped > 40).sum() >= 8 * max(1, (honest > 40).sum())


def test_trap_weights_need_a_fully_connected_first_layer():
    ctx = CraftingContext((1, 8, 8), 10, 4, None)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    with pytest.raises(InvalidParameterError, match="fully connected"):
        TrapWeights().craft(conv, context=ctx, generator=torch.Generator())


@pytest.mark.parametrize("attack,threat_model,defense,match", [
    ("imprint", "hbc-server", "fedsgd", "malicious server's exactly"),
    ("inverting-gradients", "malicious-server", "fedsgd", "malicious server's exactly"),
    ("imprint", None, "ffa-lora", "train every parameter"),
])
def test_threat_model_and_attack_must_agree(attack, threat_model, defense, match, capsys):
    from audit.harness import validate

    cfg = AuditConfig(attack=attack, threat_model=threat_model, defense=defense)
    with pytest.raises(InvalidParameterError, match=match):
        validate(cfg)


@pytest.mark.parametrize("name,params,match", [
    ("imprint", {"bins": 1}, "bins"), ("imprint", {"measurement": "median"}, "measurement"),
    ("imprint", {"scale": math.inf}, "scale"), ("trap-weights", {"shrink": 1.5}, "shrink"),
    ("trap-weights", {"depth": 2}, "depth"),
])
def test_bad_parameters_name_themselves(name, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        ATTACKS.create(name, **params)


def test_cli_lists_and_runs_the_malicious_server(tmp_path, capsys):
    code, out, _ = run(["list"], capsys)
    assert code == 0
    for name in ("imprint", "trap-weights", "malicious-server", "malicious-server-secagg"):
        assert name in out
    code, _, err = run(["audit", "--dataset", "lfw", "--model", "convnet", "--model-param", "width=4",
                        "--attack", "imprint", "--batch-size", "32", "--num-targets", "2",
                        "--no-progress", "--device", "cpu", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    report = (tmp_path / "report.json").read_text()
    assert '"malicious-server"' in report
    code, _, err = run(["audit", "--dataset", "lfw", "--attack", "imprint", "--threat-model",
                        "hbc-server", "--no-progress", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "malicious" in err and not (tmp_path / "x").exists()
