"""Brief pre-training lowers the loss and is deterministic under its seed."""

import torch
from torch import nn

from audit.data.registry import create_dataset
from audit.models.registry import create_model
from audit.fl.pretraining import pretrain


def _model(d):
    torch.manual_seed(0)
    return create_model("mlp", input_shape=d.input_shape, num_classes=d.num_classes,
                        channel_mean=d.channel_mean, channel_std=d.channel_std, hidden=32)


def test_pretraining_lowers_loss_deterministically():
    d = create_dataset("digits", limit=300)
    m = _model(d)
    with torch.no_grad():
        before = float(nn.functional.cross_entropy(m(d.images), d.labels))
    stats = pretrain(m, d, steps=50, seed=1)
    assert stats["final_loss"] < 0.5 * before
    again = _model(d)
    pretrain(again, d, steps=50, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), again.parameters()))


def test_zero_steps_is_a_no_op():
    d = create_dataset("digits", limit=10)
    m = _model(d)
    before = [p.clone() for p in m.parameters()]
    assert pretrain(m, d, steps=0)["steps"] == 0
    assert all(torch.equal(p, q) for p, q in zip(before, m.parameters()))
