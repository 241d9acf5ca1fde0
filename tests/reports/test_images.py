"""Tests of reports.images: grid PNG size, content and determinism."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from audit.core.errors import InvalidParameterError
from reports.images import image_grid_png, png_base64


def _open(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("rows, n, scale, pad, mode", [
    (2, 4, 2, 2, "RGB"),
    (1, 1, 1, 0, "RGB"),
    (3, 5, 3, 1, "RGB"),
])
def test_dimensions(rows, n, scale, pad, mode):
    rng = np.random.default_rng(0)
    batches = [rng.random((n, 3, 8, 6)) for _ in range(rows)]
    image = _open(image_grid_png(batches, scale=scale, pad=pad))
    assert image.mode == mode
    assert image.size == (n * 6 * scale + (n + 1) * pad, rows * 8 * scale + (rows + 1) * pad)


def test_grayscale_and_mixed():
    gray = np.zeros((2, 1, 8, 8))
    assert _open(image_grid_png([gray, gray])).mode == "L"
    mixed = _open(image_grid_png([gray, np.ones((2, 3, 8, 8))], scale=1, pad=0))
    assert mixed.mode == "RGB"
    pixels = np.asarray(mixed)
    assert pixels[:8].max() == 0 and pixels[8:].min() == 255


def test_pixels_are_placed_upscaled_and_clipped():
    batch = np.zeros((2, 1, 2, 2))
    batch[1, 0, 0, 0] = 2.0  # clipped to 1 -> 255
    batch[0, 0, 1, 1] = np.nan  # -> 0
    batch[0, 0, 0, 1] = 0.5
    pixels = np.asarray(_open(image_grid_png([batch], scale=2, pad=1)))
    assert pixels.shape == (1 * 4 + 2, 2 * 4 + 3)
    assert (pixels[0] == 255).all() and (pixels[:, 0] == 255).all()  # padding
    assert (pixels[1:3, 1:3] == 0).all()
    assert (pixels[1:3, 3:5] == 128).all()  # 0.5 -> 128, nearest-neighbour 2x2 block
    assert (pixels[1:3, 6:8] == 255).all()  # second image, top-left pixel


def test_torch_and_numpy_give_the_same_deterministic_bytes():
    rng = np.random.default_rng(1)
    truth = rng.random((3, 3, 8, 8)).astype(np.float32)
    recon = rng.random((3, 3, 8, 8)).astype(np.float32)
    a = image_grid_png([truth, recon])
    b = image_grid_png([truth.copy(), recon.copy()])
    c = image_grid_png([torch.from_numpy(truth), torch.from_numpy(recon).requires_grad_()])
    assert a == b == c


@pytest.mark.parametrize("rows, match", [
    ([], "non-empty"),
    ([np.zeros((2, 3, 8))], "shape"),
    ([np.zeros((2, 2, 8, 8))], "C in"),
    ([np.zeros((2, 3, 8, 8)), np.zeros((3, 3, 8, 8))], "equal N, H and W"),
    (["nope"], "numpy array or torch tensor"),
    (np.zeros((2, 3, 8, 8)), "list"),
])
def test_bad_rows(rows, match):
    with pytest.raises(InvalidParameterError, match=match):
        image_grid_png(rows)


@pytest.mark.parametrize("kwargs", [{"scale": 0}, {"scale": 1.5}, {"pad": -1}, {"scale": True}])
def test_bad_scale_and_pad(kwargs):
    with pytest.raises(InvalidParameterError):
        image_grid_png([np.zeros((1, 1, 8, 8))], **kwargs)


def test_png_base64_round_trip():
    data = image_grid_png([np.zeros((1, 1, 8, 8))])
    text = png_base64(data)
    assert text.isascii() and "\n" not in text
    assert base64.b64decode(text) == data
    with pytest.raises(InvalidParameterError):
        png_base64("not bytes")
