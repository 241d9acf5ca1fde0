"""The task's class weights reach the clients' loss and the attacker's replay of it."""

import torch
from torch import nn

from attacks.gradient_matching import attack_copy, make_update_fn
from audit.fl.simulation import local_update
from audit.core.updates import ClientData, LocalTraining, UpdateKind


def test_weighted_local_update_matches_weighted_cross_entropy_and_the_attack_replay():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ELU(), nn.Conv2d(4, 2, 1))
    x = torch.rand(2, 3, 8, 8)
    y = (torch.rand(2, 8, 8) < 0.1).long()
    training = LocalTraining(steps=1, lr=0.1, kind=UpdateKind.GRADIENT, class_weights=(1.0, 10.0))
    update = local_update(model, ClientData(x, y), training, client_id=0, round=0)
    loss = nn.functional.cross_entropy(model(x), y, weight=torch.tensor([1.0, 10.0]))
    expected = torch.autograd.grad(loss, list(model.parameters()))
    for (name, _), g in zip(model.named_parameters(), expected):
        assert torch.allclose(update.tensors[name], g, atol=1e-6)
    unweighted = local_update(model, ClientData(x, y), LocalTraining(), client_id=0, round=0)
    assert not torch.allclose(unweighted.tensors["0.weight"], update.tensors["0.weight"])
    # the attacker replays the same weighted loss from the (public) local training
    copy, params = attack_copy(model, torch.device("cpu"))
    replay = make_update_fn(copy, training)(params, x, y)
    for name in update.tensors:
        assert torch.allclose(replay[name], update.tensors[name], atol=1e-6)
