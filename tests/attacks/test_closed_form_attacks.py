"""Label recovery and the analytic FC attack on hand-built models, against closed forms."""

import pytest
import torch
from torch import nn

from attacks.analytic_fc import AnalyticFC, first_linear
from attacks.label_recovery import count_labels, idlg_labels
from audit.core.attack import AttackView
from audit.core.errors import InvalidParameterError
from audit.fl.simulation import ClientData, local_update
from audit.core.threat_model import create_threat_model
from audit.core.updates import LocalTraining, UpdateKind


def _view(model, x, y, training=LocalTraining()):
    update = local_update(model, ClientData(x, y), training, client_id=0, round=0)
    return AttackView(
        threat_model=create_threat_model("hbc-server"),
        model=model,
        target=update,
        local_training=training,
        batch_size=len(y),
        input_shape=tuple(x.shape[1:]),
        num_classes=10,
    )


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.mark.parametrize("label", range(10))
def test_idlg_recovers_every_label_at_batch_1(label):
    torch.manual_seed(label)
    x = torch.rand(1, 3, 4, 4)
    assert int(idlg_labels(_view(_mlp(), x, torch.tensor([label])))) == label


def test_idlg_on_a_model_delta_of_several_steps():
    x = torch.rand(1, 3, 4, 4)
    training = LocalTraining(steps=3, lr=0.05, kind=UpdateKind.MODEL_DELTA)
    assert int(idlg_labels(_view(_mlp(), x, torch.tensor([7]), training))) == 7


def test_label_counts_at_batch_8_random_init():
    torch.manual_seed(3)
    x = torch.rand(8, 3, 4, 4)
    y = torch.tensor([0, 0, 1, 2, 2, 2, 5, 9])
    got = count_labels(_view(_mlp(), x, y), generator=torch.Generator().manual_seed(0))
    assert got.tolist() == sorted(y.tolist())


def test_analytic_fc_is_exact_at_batch_1():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 4, 4)
    result = AnalyticFC().run(_view(_mlp(), x, torch.tensor([4])), generator=None, device="cpu")
    assert torch.allclose(result.images, x, atol=1e-5)


def test_analytic_fc_refuses_a_conv_first_layer():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(16, 10))
    with pytest.raises(InvalidParameterError, match="fully connected"):
        first_linear(model)
