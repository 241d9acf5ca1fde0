"""The Inverting Gradients engine: targets batched with restarts give the same result as one
target at a time, incompatible targets are not batched, torch.compile falls back to eager."""

import pytest
import torch

from attacks.inverting_gradients import batch_groups, compiled_or_eager
from audit.core.attack import ATTACKS
from audit.core.config import AuditConfig
from audit.core.errors import InvalidParameterError
from audit.harness import prepare, run_audit, targets
from audit.models.registry import create_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def views():
    cfg = AuditConfig(model="convnet", model_params={"width": 4, "norm": "batch"}, num_targets=4, batch_size=1)
    return [t.view for t in targets(prepare(cfg, device=CPU))]


def results(views, **params):
    attack = ATTACKS.create("inverting-gradients", iterations=6, restarts=2, **params)
    return attack.run_targets(views, generators=[torch.Generator().manual_seed(i) for i in range(len(views))],
                              device=CPU)


def test_targets_batched_follow_the_same_steps_as_one_by_one(views):
    alone, together = results(views, target_batch=1), results(views, target_batch=4)
    assert [r.stats["targets_batched"] for r in together] == [4] * 4
    for a, b in zip(alone, together):
        assert torch.allclose(a.images, b.images, atol=1e-5)
        assert torch.equal(a.labels, b.labels)
        assert a.stats["best_restart"] == b.stats["best_restart"]
    # run() of one view is a batch of one
    single = ATTACKS.create("inverting-gradients", iterations=6, restarts=2).run(
        views[2], generator=torch.Generator().manual_seed(2), device=CPU)
    assert torch.allclose(single.images, alone[2].images, atol=1e-5)


def test_groups_of_at_most_target_batch(views):
    assert batch_groups(views, 3) == [[0, 1, 2], [3]]
    assert batch_groups(views, 1) == [[0], [1], [2], [3]]


def test_views_of_different_models_are_not_batched(views):
    from dataclasses import replace

    other = replace(views[1], model=create_model("convnet", input_shape=(3, 32, 32), num_classes=8,
                                                 channel_mean=(0.5,) * 3, channel_std=(0.25,) * 3, width=4,
                                                 norm="batch"))
    assert batch_groups([views[0], other, views[2]], 8) == [[0, 2], [1]]


def test_the_harness_finding_does_not_depend_on_the_batching():
    def finding(tb):
        cfg = AuditConfig(model="convnet", model_params={"width": 4}, num_targets=3, batch_size=1,
                          attack_params={"iterations": 4, "restarts": 2, "target_batch": tb})
        f = run_audit(cfg, device=CPU, lpips_scorer=None)
        return next(m for m in f["metrics"] if m["name"] == "psnr")["per_item"]

    assert finding(1) == pytest.approx(finding(3), abs=1e-3)


def test_compile_failure_falls_back_to_eager(monkeypatch):
    def broken(fn):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    fn = lambda x: x * 2  # noqa: E731
    got, how = compiled_or_eager(fn, (torch.ones(2),))
    assert got is fn and how == "eager: torch.compile failed (RuntimeError)"


def test_compile_disagreement_falls_back_to_eager(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda fn: (lambda x: fn(x) + 1))
    fn = lambda x: x * 2  # noqa: E731
    got, how = compiled_or_eager(fn, (torch.ones(2),))
    assert got is fn and "disagreed" in how


@pytest.mark.parametrize("params,match", [({"compile": "yes"}, "compile"), ({"target_batch": 0}, "target_batch")])
def test_bad_engine_parameters_name_themselves(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        ATTACKS.create("inverting-gradients", **params)


def test_convnet_batch_norm_option():
    kw = dict(input_shape=(3, 8, 8), num_classes=2, channel_mean=(0.5,) * 3, channel_std=(0.25,) * 3)
    names = [n for n, _ in create_model("convnet", norm="batch", **kw).named_children()]
    assert names[:4] == ["standardize", "conv1", "norm1", "act1"] and "norm3" in names
    assert "norm1" not in [n for n, _ in create_model("convnet", **kw).named_children()]
    with pytest.raises(InvalidParameterError, match="norm"):
        create_model("convnet", norm="layer", **kw)


@pytest.mark.slow
def test_compiled_engine_agrees_with_eager(views):
    eager, fast = results(views[:2], target_batch=2), results(views[:2], target_batch=2, compile=True)
    assert fast[0].stats["compiled"] == "compiled"
    for a, b in zip(eager, fast):
        assert torch.allclose(a.images, b.images, atol=1e-3)
