"""The ViT/LoRA stack (audit.models.vit_lora): DEeR's LoRA init, what is trainable, the pre-training
switch, local checkpoints, parameter errors; tiny configs, nothing downloaded."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from audit.data.registry import create_dataset
from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from audit.fl.pretraining import pretrain
from audit.models.lora import LoraPair, lora_pairs
from audit.models.vit_lora import TARGETS, ViTClassifier, save_checkpoint

SHAPE = (1, 16, 16)
TINY = dict(hidden=32, layers=2, heads=2, patch=4, mlp=64)


def make(name="vit-lora", *, seed=0, shape=SHAPE, num_classes=10, **params):
    torch.manual_seed(seed)
    c = shape[0]
    return create_model(name, input_shape=shape, num_classes=num_classes,
                        channel_mean=[0.3] * c, channel_std=[0.2] * c, **{**TINY, **params})


def base_state(model):
    """Parameters of the base ViT (no LoRA), keyed by the name they have without LoRA."""
    lora = {n for p in lora_pairs(model) for n in (p.a, p.b)} if model.has_lora else set()
    return {n.replace(".base_layer", ""): p.detach().clone()
            for n, p in model.named_parameters() if n not in lora}


def lora_state(model):
    return {n: p.detach().clone() for p in lora_pairs(model) for n, p in
            ((p.a, model.get_parameter(p.a)), (p.b, model.get_parameter(p.b)))}


def role(pair):
    """``query``, ``key``... : which target a LoRA module adapts (module names vary with transformers)."""
    return next(t for t, suffixes in TARGETS.items() if pair.module.endswith(tuple("." + s for s in suffixes)))


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


X = torch.rand(4, *SHAPE, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", ["vit", "vit-lora"])
@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 32, 32)])
def test_output_shape(name, shape):
    m = make(name, shape=shape, num_classes=7)
    assert isinstance(m, ViTClassifier)
    out = m(torch.rand(2, *shape))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)


def test_lora_at_init_leaves_the_base_model_unchanged():
    base, lora = make("vit"), make("vit-lora")
    assert same(base_state(base), base_state(lora))
    with torch.no_grad():
        assert torch.equal(base(X), lora(X))
    assert all(not lora.get_parameter(p.b).any() for p in lora_pairs(lora))


def test_lora_a_is_kaiming_uniform():
    m = make("vit-lora", seed=3)
    for p in lora_pairs(m):
        a = m.get_parameter(p.a).detach()
        bound = 1 / math.sqrt(a.shape[1])  # kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3), bound sqrt(3) gain / sqrt(fan_in)
        assert a.abs().max() <= bound and a.abs().max() > 0.8 * bound
        assert (a != 0).all()
        assert abs(float(a.mean())) < 0.25 * bound


def test_only_lora_is_trainable_with_the_right_shapes():
    m = make("vit-lora", r=4, alpha=8)
    pairs = lora_pairs(m)
    assert len(pairs) == 3 * TINY["layers"] and all(isinstance(p, LoraPair) for p in pairs)
    assert pairs == lora_pairs(m)  # stable order
    assert [role(p) for p in pairs] == ["query", "key", "value"] * TINY["layers"]
    params = dict(m.named_parameters())
    for p in pairs:
        assert params[p.a].shape == (4, TINY["hidden"]) and params[p.b].shape == (TINY["hidden"], 4)
        assert p.scaling == pytest.approx(8 / 4)
    trainable = {n for n, p in params.items() if p.requires_grad}
    assert trainable == {n for p in pairs for n in (p.a, p.b)}
    assert all(p.requires_grad for p in make("vit").parameters())


def test_output_target_adds_a_pair_per_block():
    pairs = lora_pairs(make("vit-lora", targets="query,value,output"))
    assert len(pairs) == 3 * TINY["layers"]
    assert [role(p) for p in pairs] == ["query", "value", "output"] * TINY["layers"]


def test_one_sgd_step_on_lora_changes_outputs_not_the_base():
    m = make("vit-lora")
    before_base, before_out = base_state(m), m(X).detach()
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    nn.functional.cross_entropy(m(X), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert same(before_base, base_state(m))
    assert any(m.get_parameter(p.b).abs().sum() > 0 for p in lora_pairs(m))
    assert not torch.allclose(before_out, m(X).detach())


def test_pretraining_trains_the_base_not_lora_and_restores_flags():
    m = make("vit-lora")
    flags = {n: p.requires_grad for n, p in m.named_parameters()}
    lora = {n for p in lora_pairs(m) for n in (p.a, p.b)}
    with m.pretraining() as inside:
        assert inside is m
        assert all(p.requires_grad == (n not in lora) for n, p in m.named_parameters())
        assert m.get_parameter("vit.classifier.weight").requires_grad
    assert flags == {n: p.requires_grad for n, p in m.named_parameters()}

    plain = make("vit")
    plain.get_parameter("vit.classifier.bias").requires_grad_(False)
    with plain.pretraining():
        assert all(p.requires_grad for p in plain.parameters())
    assert not plain.get_parameter("vit.classifier.bias").requires_grad


def test_pretrain_on_vit_lora_changes_the_base_and_leaves_lora():
    d = create_dataset("digits", size=16, limit=64)
    m = make("vit-lora", shape=d.input_shape, num_classes=d.num_classes)
    flags = {n: p.requires_grad for n, p in m.named_parameters()}
    base, lora = base_state(m), lora_state(m)
    stats = pretrain(m, d, steps=3, batch_size=16, seed=0)
    assert stats["steps"] == 3 and math.isfinite(stats["final_loss"])
    after = base_state(m)
    assert not torch.equal(base["vit.classifier.weight"], after["vit.classifier.weight"])
    query = lora_pairs(m)[0].module + ".weight"  # the frozen base weight under the first LoRA
    assert not torch.equal(base[query], after[query])
    assert same(lora, lora_state(m))
    assert flags == {n: p.requires_grad for n, p in m.named_parameters()}


def test_checkpoint_round_trip(tmp_path):
    base = make("vit", seed=5)
    with torch.no_grad():  # a non-random feature, to be sure weights come from the file
        base.get_parameter("vit.classifier.bias").add_(1.0)
    save_checkpoint(base, tmp_path)
    torch.manual_seed(123)
    loaded = create_model("vit-lora", input_shape=SHAPE, num_classes=10, channel_mean=[0.3], channel_std=[0.2],
                          checkpoint=str(tmp_path))
    assert loaded.vit.config.hidden_size == TINY["hidden"]  # architecture from the checkpoint
    assert same(base_state(base), base_state(loaded))
    assert len(lora_pairs(loaded)) == 3 * TINY["layers"]
    with torch.no_grad():
        assert torch.equal(base(X), loaded(X))
    with pytest.raises(InvalidParameterError, match="save the base before"):
        save_checkpoint(loaded, tmp_path / "again")


@pytest.mark.parametrize(
    "params, needle",
    [({"checkpoint": "/nonexistent/vit"}, "checkpoint.*no such directory"),
     ({"hidden": 30, "heads": 4}, "'hidden'.*30"),
     ({"patch": 5}, "'patch'.*5"),
     ({"targets": "query,mlp"}, "'targets'.*mlp"),
     ({"r": 0}, "'r'"),
     ({"depth": 3}, "depth")],
)
def test_bad_params(params, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        make("vit-lora", **params)


def test_checkpoint_must_match_the_data(tmp_path):
    save_checkpoint(make("vit"), tmp_path / "ck")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidParameterError, match="'checkpoint'.*num_labels=3"):
        make("vit-lora", num_classes=3, checkpoint=str(tmp_path / "ck"))
    with pytest.raises(InvalidParameterError, match="'checkpoint'.*image_size=32"):
        make("vit", shape=(1, 32, 32), checkpoint=str(tmp_path / "ck"))
    with pytest.raises(InvalidParameterError, match="'checkpoint'.*config.json"):
        make("vit", checkpoint=str(tmp_path / "empty"))


def test_lora_pairs_needs_lora():
    with pytest.raises(InvalidParameterError, match="without LoRA"):
        lora_pairs(make("vit"))


def test_same_seed_same_weights():
    a, b = make("vit-lora", seed=7), make("vit-lora", seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_double_backward_for_gradient_inversion():
    m = make("vit-lora")
    x = X.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(m(x), torch.tensor([0, 1, 2, 3]))
    grads = torch.autograd.grad(loss, [p for p in m.parameters() if p.requires_grad], create_graph=True)
    (gx,) = torch.autograd.grad(sum((g ** 2).sum() for g in grads), x)
    assert gx.abs().sum() > 0


def test_importing_the_registry_does_not_import_transformers():
    code = "import sys, audit.models.registry; assert not {'transformers', 'peft'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
