"""The U-Net for tamper segmentation: shapes, stable layer names, parameter checks, and that
the federated simulation trains it unchanged on a toy segmentation task."""

import pytest
import torch
from torch import nn

from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model, describe_model
from audit.metrics.segmentation import evaluate_segmentation, iou_pooled
from audit.fl.simulation import ClientData, local_update
from audit.models.unet import unet
from audit.core.updates import LocalTraining, UpdateKind


def make(shape=(3, 16, 16), num_classes=2, **params):
    c = shape[0]
    return create_model("unet", input_shape=shape, num_classes=num_classes,
                        channel_mean=[0.5] * c, channel_std=[0.25] * c, **params)


def toy_segmentation(n: int, *, side: int = 32, seed: int = 0):
    """One-channel noise in [0, 0.5] plus 0.35 inside a random rectangle (the positive class).

    The two intensity ranges overlap, so a per-pixel threshold scores IoU ~0.4 and a model
    needs spatial context to do better.
    """
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, side, side, dtype=torch.long)
    for i in range(n):
        h, w = torch.randint(8, 17, (2,), generator=g).tolist()
        r = int(torch.randint(0, side - h + 1, (1,), generator=g))
        c = int(torch.randint(0, side - w + 1, (1,), generator=g))
        masks[i, r : r + h, c : c + w] = 1
    images = 0.5 * torch.rand(n, 1, side, side, generator=g) + 0.35 * masks[:, None]
    return images, masks


@pytest.mark.parametrize(
    "shape, params",
    [((3, 16, 16), {}), ((1, 8, 24), {}), ((3, 64, 64), {}), ((1, 32, 16), {"depth": 3}),
     ((2, 4, 4), {"depth": 1, "base_channels": 3}), ((1, 16, 16), {"depth": 4, "norm": "none"}),
     ((3, 16, 16), {"base_channels": 6, "activation": "tanh"}), ((1, 8, 8), {"activation": "relu"})],
)
@pytest.mark.parametrize("num_classes", [1, 2, 5])
def test_output_is_per_pixel_logits(shape, params, num_classes):
    m = make(shape, num_classes, **params)
    out = m(torch.rand(2, *shape))
    assert out.shape == (2, num_classes, *shape[1:]) and torch.isfinite(out).all()
    assert next(iter(m.named_children()))[0] == "standardize"


def test_fully_convolutional_on_other_divisible_sizes():
    m = make((3, 16, 16))
    assert m(torch.rand(1, 3, 32, 12)).shape == (1, 2, 32, 12)
    with pytest.raises(InvalidParameterError, match="divisible by 2\\*\\*depth = 4"):
        m(torch.rand(1, 3, 30, 32))


def test_default_layer_names_are_stable():
    layers = describe_model(make())["layers"]
    assert layers == [
        "enc1.conv1", "enc1.norm1", "enc1.conv2", "enc1.norm2",
        "enc2.conv1", "enc2.norm1", "enc2.conv2", "enc2.norm2",
        "bottleneck.conv1", "bottleneck.norm1", "bottleneck.conv2", "bottleneck.norm2",
        "dec2.up", "dec2.conv1", "dec2.norm1", "dec2.conv2", "dec2.norm2",
        "dec1.up", "dec1.conv1", "dec1.norm1", "dec1.conv2", "dec1.norm2",
        "head",
    ]
    no_norm = describe_model(make(norm="none"))["layers"]
    assert no_norm == [n for n in layers if ".norm" not in n]


def test_no_batch_norm_and_expected_widths():
    m = make((3, 64, 64), base_channels=8, depth=2)
    assert not any(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in m.modules())
    assert [m.enc1.conv1.out_channels, m.enc2.conv1.out_channels, m.bottleneck.conv1.out_channels] == [8, 16, 32]
    assert (m.dec2.up.out_channels, m.dec2.conv1.in_channels, m.dec1.conv1.in_channels) == (16, 32, 16)
    assert isinstance(m.enc1.norm1, nn.GroupNorm) and m.enc1.norm1.num_groups == 4
    assert describe_model(m)["parameters"] == 27714


def test_same_seed_same_weights_and_direct_factory():
    torch.manual_seed(3)
    a = make()
    torch.manual_seed(3)
    b = unet(input_shape=(3, 16, 16), num_classes=2, channel_mean=[0.5] * 3, channel_std=[0.25] * 3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize(
    "shape, params, needle",
    [((3, 16, 16), {"base_channels": 0}, "'base_channels'"), ((3, 16, 16), {"depth": 0}, "'depth'"),
     ((3, 16, 16), {"depth": 2.5}, "'depth'"), ((3, 16, 16), {"activation": "swish"}, "'activation'"),
     ((3, 16, 16), {"norm": "batch"}, "'norm'"), ((3, 16, 16), {"width": 8}, "'width'"),
     ((3, 18, 16), {}, "'input_shape'.*divisible by 2\\*\\*depth = 4"),
     ((3, 16, 16), {"depth": 5}, "'input_shape'.*divisible by 2\\*\\*depth = 32")],
)
def test_bad_params_name_the_parameter(shape, params, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        make(shape, **params)


def test_bad_shapes_and_statistics():
    with pytest.raises(InvalidParameterError, match="'input_shape'"):
        unet(input_shape=(16, 16), num_classes=2, channel_mean=[0.5], channel_std=[0.2])
    with pytest.raises(InvalidParameterError, match="'channel_mean'"):
        unet(input_shape=(3, 16, 16), num_classes=2, channel_mean=[0.5], channel_std=[0.2] * 3)
    with pytest.raises(InvalidParameterError, match="'num_classes'"):
        unet(input_shape=(3, 16, 16), num_classes=0, channel_mean=[0.5] * 3, channel_std=[0.2] * 3)


def test_fedsgd_gradient_of_mask_loss_covers_every_parameter():
    images, masks = toy_segmentation(4, side=16)
    m = create_model("unet", input_shape=(1, 16, 16), num_classes=2, channel_mean=[0.3], channel_std=[0.2])
    update = local_update(m, ClientData(images, masks), LocalTraining(), client_id=0, round=0)
    params = dict(m.named_parameters())
    assert update.tensors.keys() == params.keys() and "enc1.conv1.weight" in params
    assert all(update.tensors[n].shape == p.shape for n, p in params.items())
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in update.tensors.values())
    expected = torch.autograd.grad(nn.CrossEntropyLoss()(m(images), masks), list(params.values()))
    assert all(torch.allclose(update.tensors[n], g) for n, g in zip(params, expected))


def test_fedavg_training_segments_rectangles():
    """One client, 4 rounds x 8 full-batch SGD steps through the simulation's local_update."""
    train, held_out = toy_segmentation(32, seed=1), toy_segmentation(32, seed=2)
    assert iou_pooled(held_out[0][:, 0] > 0.425, held_out[1]) < 0.5  # thresholding is not enough
    m = create_model("unet", input_shape=(1, 32, 32), num_classes=2, channel_mean=[0.3], channel_std=[0.2])
    before = evaluate_segmentation(m, *held_out)
    training = LocalTraining(steps=8, lr=0.3, kind=UpdateKind.MODEL_DELTA)
    for rnd in range(4):
        update = local_update(m, ClientData(*train), training, client_id=0, round=rnd)
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.sub_(update.tensors[name])
    after = evaluate_segmentation(m, *held_out)
    assert after["iou_pooled"] > 0.7 and after["iou_mean"] > 0.7 and after["f1_pooled"] > 0.8
    assert after["iou_pooled"] > before["iou_pooled"] + 0.3
