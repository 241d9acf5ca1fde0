"""The clients' local training as they really run it (issue 22, item 2): the simulation's
local step equals torch.optim's SGD/Adam on the same minibatches, the attacks'
differentiable re-simulation equals the simulation, in train and eval mode, and every bad
description is an error naming the value."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from attacks.gradient_matching import attack_copy, make_update_fn
from audit.core.errors import InvalidParameterError
from audit.core.updates import ClientData, LocalTraining, UpdateKind
from audit.fl.local_steps import minibatch_schedule, training_mode
from audit.fl.simulation import local_update


def _net() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Dropout(0.5), nn.Linear(4 * 8 * 8, 5))
    with torch.no_grad():  # running statistics unlike a batch's: eval and train mode differ
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return net


def _data(n: int = 6) -> ClientData:
    return ClientData(torch.rand(n, 3, 8, 8), torch.randint(0, 5, (n,)))


def _max_diff(a, b) -> float:
    return max(float((a[n] - b[n]).abs().max()) for n in b)


CASES = [("sgd", {"momentum": 0.9}), ("adam", {})]


@pytest.mark.parametrize("optimizer,extra", CASES)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_local_update_equals_torch_optim(optimizer, extra, mode):
    net, data = _net(), _data()
    training = LocalTraining(lr=0.05, kind=UpdateKind.MODEL_DELTA, epochs=2, batch_size=4, optimizer=optimizer,
                             weight_decay=1e-3, model_mode=mode, dropout=False, **extra)
    update = local_update(net, data, training, client_id=3, round=1)
    ref = copy.deepcopy(net)
    ref.train(mode == "train")
    ref[4].eval()  # dropout off
    opt = (torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3) if optimizer == "sgd"
           else torch.optim.Adam(ref.parameters(), lr=0.05, weight_decay=1e-3))
    for idx in minibatch_schedule(len(data), training, client_id=3, round=1):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(data.images[idx]), data.labels[idx]).backward()
        opt.step()
    expected = {n: (p0 - p1).detach() for (n, p0), (_, p1) in zip(net.named_parameters(), ref.named_parameters())}
    assert _max_diff(update.tensors, expected) <= 1e-7
    assert net.training  # the broadcast model's own mode is left as it was


@pytest.mark.parametrize("optimizer,extra", CASES)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_attack_resimulation_equals_the_simulation(optimizer, extra, mode):
    net, data = _net(), _data()
    training = LocalTraining(lr=0.05, kind=UpdateKind.MODEL_DELTA, epochs=2, batch_size=4, optimizer=optimizer,
                             model_mode=mode, dropout=False, **extra)
    update = local_update(net, data, training, client_id=0, round=2)
    model, params = attack_copy(net, torch.device("cpu"), update.tensors, training)
    resim = make_update_fn(model, training, client_id=0, round=2)(params, data.images, data.labels)
    assert _max_diff(resim, update.tensors) <= 1e-6
    # the adversary's wrong assumption about the mode gives another function
    other = LocalTraining(lr=0.05, kind=UpdateKind.MODEL_DELTA, epochs=2, batch_size=4, optimizer=optimizer,
                          model_mode="eval" if mode == "train" else "train", **extra)
    model, params = attack_copy(net, torch.device("cpu"), update.tensors, other)
    wrong = make_update_fn(model, other, client_id=0, round=2)(params, data.images, data.labels)
    assert _max_diff(wrong, update.tensors) > 1e-4


def test_the_resimulation_is_differentiable_in_the_data():
    net, data = _net(), _data(4)
    training = LocalTraining(lr=0.05, kind=UpdateKind.MODEL_DELTA, epochs=2, batch_size=2, optimizer="adam",
                             model_mode="eval")
    model, params = attack_copy(net, torch.device("cpu"), None, training)
    x = data.images.clone().requires_grad_(True)
    delta = make_update_fn(model, training)(params, x, data.labels)
    (gx,) = torch.autograd.grad(sum(t.square().sum() for t in delta.values()), x)
    assert torch.isfinite(gx).all() and gx.abs().sum() > 0


def test_minibatch_schedule_covers_every_item_once_per_epoch():
    training = LocalTraining(kind=UpdateKind.MODEL_DELTA, epochs=3, batch_size=4)
    steps = minibatch_schedule(10, training, client_id=1, round=0)
    assert [len(s) for s in steps] == [4, 4, 2] * 3
    for e in range(3):
        assert sorted(torch.cat(steps[3 * e:3 * e + 3]).tolist()) == list(range(10))
    again = minibatch_schedule(10, training, client_id=1, round=0)
    assert all(torch.equal(a, b) for a, b in zip(steps, again))
    assert not all(torch.equal(a, b) for a, b in zip(steps, minibatch_schedule(10, training, client_id=2, round=0)))
    fixed = LocalTraining(kind=UpdateKind.MODEL_DELTA, batch_size=4, shuffle=False)
    assert torch.cat(minibatch_schedule(10, fixed, client_id=1, round=0)).tolist() == list(range(10))
    assert minibatch_schedule(10, LocalTraining(), client_id=0, round=0) is None


def test_training_mode_is_restored():
    net = _net()
    training = LocalTraining(model_mode="eval", dropout=True)
    with training_mode(net, training):
        assert not net[1].training and net[4].training
    assert net[1].training and net[4].training


def test_a_users_loss_is_used(tmp_path):
    path = tmp_path / "my_loss.py"
    path.write_text("import torch\n\ndef loss(logits, labels):\n"
                    "    return torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)\n")
    net, data = _net(), _data()
    training = LocalTraining(lr=0.1, kind=UpdateKind.MODEL_DELTA, steps=2, loss=f"{path}:loss", dropout=False)
    update = local_update(net, data, training, client_id=0, round=0)
    ref = copy.deepcopy(net)
    ref[4].eval()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(data.images), data.labels, label_smoothing=0.1).backward()
        opt.step()
    expected = {n: (p0 - p1).detach() for (n, p0), (_, p1) in zip(net.named_parameters(), ref.named_parameters())}
    assert _max_diff(update.tensors, expected) <= 1e-7


@pytest.mark.parametrize("overrides,needle", [
    ({"optimizer": "rmsprop"}, "'optimizer'"),
    ({"model_mode": "inference"}, "'model_mode'"),
    ({"epochs": 0}, "'epochs'"),
    ({"batch_size": 0}, "'batch_size'"),
    ({"weight_decay": -1}, "'weight_decay'"),
    ({"betas": "0.9"}, "'betas'"),
    ({"optimizer": "adam", "momentum": 0.9}, "'momentum'"),
    ({"dropout": "sometimes"}, "'dropout'"),
    ({"learning_rate": 0.1}, "learning_rate"),
])
def test_bad_descriptions_name_the_value(overrides, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        LocalTraining(kind=UpdateKind.MODEL_DELTA).with_overrides(overrides)


def test_minibatches_need_a_model_delta_defense():
    with pytest.raises(InvalidParameterError, match="model-delta"):
        LocalTraining().with_overrides({"epochs": 2, "batch_size": 4})
