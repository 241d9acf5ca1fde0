"""PSI layer scores (FedRE, project choices): torch.func estimator vs the autograd loop, closed
forms for a linear model, masking, determinism, untouched model, budget weights."""

import math

import pytest
import torch
from torch import nn

from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from defenses.psi_scores import (
    normalized_budget_weights,
    parameter_layers,
    psi_layer_scores,
    psi_layer_scores_loop,
)

STATS = {"channel_mean": (0.5,) * 3, "channel_std": (0.25,) * 3}


def _data(n, c, h, w, *, classes, seg, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, c, h, w, generator=g, dtype=dtype)
    labels = torch.randint(0, classes, (n, h, w) if seg else (n,), generator=g)
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    for i in range(n):  # a different rectangle per example
        masks[i, i % 3: i % 3 + 3, 1 + i % 2: 5 + i % 2] = True
    return images, labels, masks


class SegMLP(nn.Module):
    """A fully connected network with per-pixel logits (N, K, H, W)."""

    def __init__(self, c, h, w, k, hidden=6):
        super().__init__()
        self.shape = (k, h, w)
        self.fc1 = nn.Linear(c * h * w, hidden)
        self.act = nn.ELU()
        self.fc2 = nn.Linear(hidden, k * h * w)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x.flatten(1)))).reshape(-1, *self.shape)


class SegConv(nn.Module):
    def __init__(self, c, k, width=3):
        super().__init__()
        self.conv1 = nn.Conv2d(c, width, 3, padding=1)
        self.act = nn.ELU()
        self.conv2 = nn.Conv2d(width, k, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x)))


class LeftRight(nn.Module):
    """Per-pixel logits: ``left`` (1x1 conv) sees only the left half, ``right`` only the right."""

    def __init__(self, c, k):
        super().__init__()
        self.left = nn.Conv2d(c, k, 1)
        self.right = nn.Conv2d(c, k, 1)

    def forward(self, x):
        half = x.shape[-1] // 2
        return torch.cat([torch.tanh(self.left(x[..., :half])), torch.tanh(self.right(x[..., half:]))], dim=-1)


def _cases():
    c, h, w = 3, 8, 8
    shape = (c, h, w)
    return {
        "convnet-classes": (lambda: create_model("convnet", input_shape=shape, num_classes=3, width=3, **STATS), False),
        "mlp-relu-classes": (lambda: create_model("mlp", input_shape=shape, num_classes=3, hidden=6, **STATS), False),
        "mlp-segmentation": (lambda: SegMLP(c, h, w, 3), True),
        "conv-segmentation": (lambda: SegConv(c, 3), True),
        "unet-segmentation": (lambda: create_model("unet", input_shape=shape, num_classes=2, base_channels=2,
                                                   depth=1, **STATS), True),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_torch_func_matches_autograd_loop_float64(case):
    make, seg = _cases()[case]
    model = make().double()
    classes = 2 if case.startswith("unet") else 3
    images, labels, masks = _data(3, 3, 8, 8, classes=classes, seg=seg)
    fast = psi_layer_scores(model, images, labels, masks, projections=3, seed=1)
    slow = psi_layer_scores_loop(model, images, labels, masks, projections=3, seed=1)
    assert list(fast) == list(slow) == list(parameter_layers(model))
    assert all(v > 0 for v in fast.values())
    for name in fast:
        assert fast[name] == pytest.approx(slow[name], rel=1e-4), name
    for chunk in (1, 2, 3, 7):  # projection slices, whole examples, everything
        chunked = psi_layer_scores(model, images, labels, masks, projections=3, seed=1, chunk=chunk)
        assert chunked == pytest.approx(fast, rel=1e-10)


def _exact_linear_scores(model, loss_fn, images, targets, masks):
    """sqrt(mean_n ||d g(x_n)/d x_PSI||_F^2) with full Jacobians (torch.autograd.functional)."""
    weight = model[1].weight
    total = 0.0
    for x, t, m in zip(images, targets, masks, strict=True):
        def grad_w(xx):
            loss = loss_fn(model(xx[None]), t[None])
            return torch.autograd.grad(loss, weight, create_graph=True)[0]

        jac = torch.autograd.functional.jacobian(grad_w, x)  # (K, D, C, H, W)
        cols = m.expand_as(x).reshape(-1)
        total += float(jac.reshape(weight.numel(), -1)[:, cols].square().sum())
    return math.sqrt(total / len(images))


@pytest.mark.parametrize("loss", ["squared", "cross-entropy"])
def test_linear_model_closed_form_and_convergence(loss):
    # f(x) = W x on 1x3x3 inputs, 3 outputs; exact Jacobian Frobenius norm restricted to PSI
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 3, bias=False)).double()
    images = torch.rand(3, 1, 3, 3, dtype=torch.float64)
    masks = torch.zeros(3, 3, 3, dtype=torch.bool)
    masks[:, :2, 1:] = True
    if loss == "squared":
        loss_fn = lambda out, t: 0.5 * (out - t).square().sum()  # noqa: E731
        targets = torch.randn(3, 3, dtype=torch.float64)
    else:
        loss_fn, targets = None, torch.tensor([0, 2, 1])
    exact = _exact_linear_scores(model, loss_fn or nn.functional.cross_entropy, images, targets, masks)
    assert exact > 0
    # unbiased for s^2, relative std about sqrt(2 / (N P)): at N=3, P=2048, 5% on s is ~5 sigma
    errors = []
    for p in (4, 64, 2048):
        est = psi_layer_scores(model, images, targets, masks, projections=p, seed=3, loss_fn=loss_fn)["1"]
        errors.append(abs(est - exact) / exact)
    assert errors[-1] < 0.05
    # the mean error over seeds shrinks as P grows (16x more projections: ~4x smaller error)
    mean_err = {
        p: sum(abs(psi_layer_scores(model, images, targets, masks, projections=p, seed=s, loss_fn=loss_fn)["1"]
                   - exact) for s in range(8)) / (8 * exact)
        for p in (4, 64)
    }
    assert mean_err[64] < mean_err[4] / 2
    # and the loop estimator is the same unbiased estimator
    loop = psi_layer_scores_loop(model, images, targets, masks, projections=4, seed=3, loss_fn=loss_fn)["1"]
    fast = psi_layer_scores(model, images, targets, masks, projections=4, seed=3, loss_fn=loss_fn)["1"]
    assert loop == pytest.approx(fast, rel=1e-10)


def test_empty_masks_give_zeros_whatever_the_pixels():
    model = SegConv(3, 3).double()
    images, labels, masks = _data(2, 3, 8, 8, classes=3, seg=True)
    empty = torch.zeros_like(masks)
    for imgs in (images, torch.rand_like(images), 1 - images):
        for fn in (psi_layer_scores, psi_layer_scores_loop):
            assert set(fn(model, imgs, labels, empty, projections=2).values()) == {0.0}


def test_empty_mask_example_counts_as_zero_in_the_mean():
    model = SegConv(3, 3).double()
    images, labels, masks = _data(2, 3, 8, 8, classes=3, seg=True)
    masks[1] = False
    both = psi_layer_scores(model, images, labels, masks, projections=2)
    first = psi_layer_scores(model, images[:1], labels[:1], masks[:1], projections=2)
    # the draw for example 0 is the same: V has shape (N, P, ...) and example 0 comes first
    assert both == pytest.approx({k: v / math.sqrt(2) for k, v in first.items()}, rel=1e-10)


def test_layer_that_cannot_see_psi_pixels_scores_zero():
    model = LeftRight(3, 2).double()
    images, labels, _ = _data(2, 3, 6, 8, classes=2, seg=True)
    masks = torch.zeros(2, 6, 8, dtype=torch.bool)
    masks[:, 1:4, 5:7] = True  # PSI in the right half only
    for fn in (psi_layer_scores, psi_layer_scores_loop):
        scores = fn(model, images, labels, masks, projections=4)
        assert scores["left"] == pytest.approx(0.0, abs=1e-12)
        assert scores["right"] > 1e-3
    # changing the pixels outside the PSI mask (the left half) does not move the right score
    changed = images.clone()
    changed[..., :4] = torch.rand(2, 3, 6, 4, dtype=torch.float64)
    again = psi_layer_scores(model, changed, labels, masks, projections=4)
    assert again["right"] == pytest.approx(psi_layer_scores(model, images, labels, masks, projections=4)["right"],
                                           rel=1e-12)


def test_deterministic_under_seed():
    model = create_model("convnet", input_shape=(3, 8, 8), num_classes=3, width=3, **STATS)
    images, labels, masks = _data(3, 3, 8, 8, classes=3, seg=False, dtype=torch.float32)
    a = psi_layer_scores(model, images, labels, masks, projections=2, seed=5)
    b = psi_layer_scores(model, images, labels, masks, projections=2, seed=5)
    c = psi_layer_scores(model, images, labels, masks, projections=2, seed=6)
    assert a == b
    assert all(a[k] != c[k] for k in a)
    assert psi_layer_scores_loop(model, images, labels, masks, projections=2, seed=5) == pytest.approx(a, rel=1e-4)


@pytest.mark.parametrize("train", [True, False])
def test_model_parameters_and_mode_unchanged(train):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ELU(),
                          nn.Conv2d(4, 2, 3, padding=1)).double()
    model[0].bias.requires_grad_(False)  # frozen: not a layer's parameter, still used
    model.train(train)
    model[1].train(not train)  # mixed modes must survive too
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    images, labels, masks = _data(2, 3, 8, 8, classes=2, seg=True)
    assert parameter_layers(model) == {"0": ["0.weight"], "1": ["1.weight", "1.bias"], "3": ["3.weight", "3.bias"]}
    fast = psi_layer_scores(model, images, labels, masks, projections=2)
    slow = psi_layer_scores_loop(model, images, labels, masks, projections=2)
    assert fast == pytest.approx(slow, rel=1e-4)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == [True, False, True, True, True, True]
    assert all(p.grad is None for p in model.parameters())


def test_root_owned_parameters_form_layer_named_empty_string():
    model = nn.Linear(4, 2)
    assert parameter_layers(model) == {"": ["weight", "bias"]}


def test_active_dropout_and_bad_inputs_are_rejected():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(12, 2))
    images, labels, masks = torch.rand(2, 3, 2, 2), torch.tensor([0, 1]), torch.ones(2, 2, 2, dtype=torch.bool)
    with pytest.raises(InvalidParameterError, match="dropout"):
        psi_layer_scores(model, images, labels, masks)
    model.eval()
    assert len(psi_layer_scores(model, images, labels, masks, projections=1)) == 1
    bad = [
        dict(psi_masks=masks.float()), dict(psi_masks=masks[:1]), dict(labels=labels.float()),
        dict(labels=labels[:1]), dict(images=images[0]), dict(projections=0), dict(chunk=0), dict(seed=-1),
    ]
    for kw in bad:
        args = {"images": images, "labels": labels, "psi_masks": masks, **kw}
        extra = {k: args.pop(k) for k in ("projections", "chunk", "seed") if k in args}
        with pytest.raises(InvalidParameterError):
            psi_layer_scores(model, args["images"], args["labels"], args["psi_masks"], **extra)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model = SegConv(3, 3).double()
    images, labels, masks = _data(2, 3, 8, 8, classes=3, seg=True)
    cpu = psi_layer_scores(model, images, labels, masks, projections=2)
    gpu = psi_layer_scores(model.cuda(), images.cuda(), labels.cuda(), masks.cuda(), projections=2)
    assert gpu == pytest.approx(cpu, rel=1e-6)


def test_budget_weights_sum_monotone_floor():
    scores = {"a": 4.0, "b": 2.0, "c": 1.0, "d": 0.01, "e": 0.0}
    w = normalized_budget_weights(scores, floor=0.05)
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["a"] < w["b"] < w["c"] < w["d"]  # more PSI, smaller share
    assert w["d"] == w["e"]  # both below the floor 0.05 * 4 = 0.2
    assert w["d"] / w["a"] == pytest.approx(1 / 0.05)  # the largest ratio the floor allows
    assert w["b"] / w["a"] == pytest.approx(2.0)  # w ∝ 1/s above the floor
    assert normalized_budget_weights(scores, floor=1.0) == pytest.approx({k: 0.2 for k in scores})
    assert normalized_budget_weights({"x": 0.0, "y": 0.0}) == {"x": 0.5, "y": 0.5}
    assert normalized_budget_weights({"only": 3.0}) == {"only": 1.0}


@pytest.mark.parametrize(
    "scores, floor",
    [({}, 0.05), ({"a": -1.0}, 0.05), ({"a": float("nan")}, 0.05), ({"a": float("inf")}, 0.05),
     ({"a": "1"}, 0.05), ([1.0, 2.0], 0.05), ({"a": 1.0}, 0.0), ({"a": 1.0}, 1.5), ({"a": 1.0}, float("nan"))],
)
def test_budget_weights_bad_inputs(scores, floor):
    with pytest.raises(InvalidParameterError):
        normalized_budget_weights(scores, floor=floor)
