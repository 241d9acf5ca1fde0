"""Local SGD with momentum: the simulation's written-out step equals torch.optim.SGD, and the
attacker's unrolled replay gives the same update."""

from __future__ import annotations

import copy

import torch
from torch import nn

from attacks.gradient_matching import make_update_fn
from audit.fl.simulation import local_update
from audit.core.updates import ClientData, LocalTraining, UpdateKind


def _setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    return model, x, y


def test_momentum_step_is_torch_sgd_bit_for_bit():
    model, x, y = _setup()
    training = LocalTraining(steps=4, lr=0.3, kind=UpdateKind.MODEL_DELTA, momentum=0.9)
    update = local_update(model, ClientData(x, y), training, client_id=0, round=0)
    ref = copy.deepcopy(model)
    opt = torch.optim.SGD(ref.parameters(), lr=0.3, momentum=0.9)
    for _ in range(4):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(x), y).backward()
        opt.step()
    for (n, p), r in zip(model.named_parameters(), ref.parameters()):
        assert torch.equal(update.tensors[n], (p - r).detach()), n
    plain = local_update(model, ClientData(x, y), LocalTraining(steps=4, lr=0.3,
                         kind=UpdateKind.MODEL_DELTA), client_id=0, round=0)
    assert not torch.allclose(plain.tensors["0.weight"], update.tensors["0.weight"])


def test_attack_replay_matches_the_client_with_momentum():
    model, x, y = _setup()
    training = LocalTraining(steps=3, lr=0.2, kind=UpdateKind.MODEL_DELTA, momentum=0.5)
    update = local_update(model, ClientData(x, y), training, client_id=0, round=0)
    params = {n: p.detach() for n, p in model.named_parameters()}
    replay = make_update_fn(model, training)(params, x, y)
    for n in params:
        assert torch.allclose(replay[n], update.tensors[n], atol=1e-6), n
