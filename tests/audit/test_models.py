"""Model shapes for every embedded data shape, and parameter validation."""

import pytest
import torch
from torch import nn

from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model, describe_model


@pytest.mark.parametrize("name", ["convnet", "mlp", "resnet"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 25, 25), (3, 32, 32), (3, 64, 64)])
def test_output_shapes(name, shape):
    m = create_model(name, input_shape=shape, num_classes=7, channel_mean=[0.5] * shape[0], channel_std=[0.25] * shape[0])
    assert m(torch.rand(2, *shape)).shape == (2, 7)
    assert torch.allclose(m.standardize(torch.full((1, *shape), 0.75)), torch.ones(1, *shape))


def test_mlp_first_layer_is_fully_connected():
    m = create_model("mlp", input_shape=(3, 8, 8), num_classes=3, channel_mean=[0.5] * 3, channel_std=[0.2] * 3)
    first = describe_model(m)["layers"][0]
    assert isinstance(dict(m.named_modules())[first], nn.Linear)


def test_same_seed_same_weights():
    kw = dict(input_shape=(3, 32, 32), num_classes=8, channel_mean=[0.5] * 3, channel_std=[0.2] * 3)
    torch.manual_seed(1)
    a = create_model("convnet", **kw)
    torch.manual_seed(1)
    b = create_model("convnet", **kw)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize(
    "name, params, needle",
    [("convnet", {"width": 0}, "width"), ("convnet", {"activation": "swish"}, "swish"),
     ("resnet", {"norm": "layer"}, "layer"), ("mlp", {"depth": 3}, "depth")],
)
def test_bad_params(name, params, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        create_model(name, input_shape=(1, 8, 8), num_classes=2, channel_mean=[0.5], channel_std=[0.2], **params)
