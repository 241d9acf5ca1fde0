"""Segmentation metrics against closed forms on hand-made masks, the empty-mask convention,
and predictions from a model."""

import numpy as np
import pytest
import torch
from torch import nn

from audit.core.errors import InvalidParameterError
from audit.metrics.segmentation import evaluate_segmentation, f1, f1_pooled, iou, iou_pooled, predict_masks


def square(side, top, left, size):
    m = np.zeros((side, side), dtype=bool)
    m[top : top + size, left : left + size] = True
    return m


def test_overlapping_squares_closed_form():
    # two 4x4 squares offset by (2, 2): intersection 4, union 16 + 16 - 4 = 28
    pred, truth = square(10, 0, 0, 4)[None], square(10, 2, 2, 4)[None]
    assert iou(pred, truth) == pytest.approx([4 / 28])
    assert f1(pred, truth) == pytest.approx([2 * 4 / 32])
    # Dice and IoU are linked by F1 = 2 IoU / (1 + IoU)
    j = iou(pred, truth)
    assert f1(pred, truth) == pytest.approx(2 * j / (1 + j))


def test_per_image_and_pooled_scores():
    pred = np.stack([square(8, 0, 0, 4), square(8, 0, 0, 2), np.zeros((8, 8), bool), np.zeros((8, 8), bool)])
    truth = np.stack([square(8, 0, 0, 4), square(8, 0, 0, 4), square(8, 4, 4, 2), np.zeros((8, 8), bool)])
    # image 0 perfect, image 1 4/16 of the truth, image 2 missed entirely, image 3 both empty
    np.testing.assert_allclose(iou(pred, truth), [1.0, 4 / 16, 0.0, 1.0])
    np.testing.assert_allclose(f1(pred, truth), [1.0, 8 / 20, 0.0, 1.0])
    # pooled: intersection 16 + 4 = 20, |pred| = 20, |truth| = 16 + 16 + 4 = 36
    assert iou_pooled(pred, truth) == pytest.approx(20 / 36)
    assert f1_pooled(pred, truth) == pytest.approx(2 * 20 / 56)
    assert isinstance(iou_pooled(pred, truth), float) and iou(pred, truth).dtype == float


def test_empty_masks_score_one_and_one_sided_empty_scores_zero():
    empty = np.zeros((2, 5, 5), dtype=int)
    assert iou(empty, empty).tolist() == [1.0, 1.0] and f1(empty, empty).tolist() == [1.0, 1.0]
    assert iou_pooled(empty, empty) == 1.0 and f1_pooled(empty, empty) == 1.0
    full = np.ones((2, 5, 5), dtype=int)
    assert iou(full, empty).tolist() == [0.0, 0.0] and f1(empty, full).tolist() == [0.0, 0.0]
    assert iou_pooled(full, empty) == 0.0


def test_accepts_torch_bool_and_01_inputs_alike():
    g = np.random.default_rng(0)
    a, b = g.random((3, 6, 7)) > 0.5, g.random((3, 6, 7)) > 0.3
    ref = iou(a, b)
    np.testing.assert_allclose(iou(torch.from_numpy(a), torch.from_numpy(b).long()), ref)
    np.testing.assert_allclose(iou(a.astype(np.uint8), b.astype(np.float32)), ref)
    inter, union = (a & b).sum((1, 2)), (a | b).sum((1, 2))
    np.testing.assert_allclose(ref, inter / union)


@pytest.mark.parametrize(
    "pred, truth, needle",
    [(np.zeros((4, 4)), np.zeros((4, 4)), "'pred' masks must have shape \\(N, H, W\\)"),
     (np.zeros((1, 4, 4)), np.zeros((1, 4, 5)), "'pred' masks must have the shape of 'truth'"),
     (np.full((1, 4, 4), 2), np.zeros((1, 4, 4)), "'pred' masks must be bool or hold only 0 and 1"),
     (np.zeros((1, 4, 4)), np.full((1, 4, 4), 0.5), "'truth' masks must be bool")],
)
def test_bad_masks(pred, truth, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        iou(pred, truth)


class Oracle(nn.Module):
    """Logits that favour class 1 where the first channel exceeds 0.5."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.num_classes = num_classes
        self.calls: list[int] = []

    def forward(self, x):
        self.calls.append(len(x))
        assert not self.training and not torch.is_grad_enabled()
        score = self.scale * (x[:, :1] - 0.5)
        if self.num_classes == 1:
            return score
        return torch.cat([-score, score, torch.full_like(score, -9.0).expand(-1, self.num_classes - 2, -1, -1)], 1)


@pytest.mark.parametrize("num_classes", [1, 2, 3])
def test_predict_masks_argmax_in_batches_and_restores_mode(num_classes):
    images = torch.rand(10, 2, 4, 6)
    model = Oracle(num_classes).train()
    pred = predict_masks(model, images, batch_size=4)
    assert model.calls == [4, 4, 2] and model.training
    assert pred.dtype == torch.long and pred.shape == (10, 4, 6)
    assert torch.equal(pred, (images[:, 0] > 0.5).long())


def test_evaluate_segmentation_values():
    images = torch.zeros(2, 1, 4, 4)
    images[0, 0, :2, :2] = 1.0  # predicted tampered: 4 pixels of image 0
    masks = torch.zeros(2, 4, 4, dtype=torch.long)
    masks[0, :2, :4] = 1  # 8 true pixels in image 0; image 1 empty in both
    out = evaluate_segmentation(Oracle(), images, masks)
    assert out == pytest.approx({
        "iou_mean": (4 / 8 + 1.0) / 2, "f1_mean": (8 / 12 + 1.0) / 2, "iou_pooled": 4 / 8,
        "f1_pooled": 8 / 12, "pixel_accuracy": 28 / 32, "tampered_fraction": 8 / 32,
    })
    assert all(type(v) is float for v in out.values())


def test_evaluate_and_predict_reject_bad_shapes():
    with pytest.raises(InvalidParameterError, match="'masks' must have shape"):
        evaluate_segmentation(Oracle(), torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 5))
    with pytest.raises(InvalidParameterError, match="'images' must have shape \\(N, C, H, W\\)"):
        predict_masks(Oracle(), torch.zeros(2, 4, 4))
    with pytest.raises(InvalidParameterError, match="'batch_size'"):
        predict_masks(Oracle(), torch.zeros(2, 1, 4, 4), batch_size=0)
    with pytest.raises(InvalidParameterError, match="must map \\(N, C, H, W\\) images to \\(N, K, H, W\\)"):
        predict_masks(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), torch.zeros(2, 1, 4, 4))
