"""Image grids (e.g. ground truth above reconstruction) as deterministic PNG bytes."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

from audit.core.errors import InvalidParameterError, invalid

_OWNER = "image_grid_png"
_PAD_VALUE = 255  # white padding between cells


def _to_numpy(row: Any, index: int) -> np.ndarray:
    """A (N, C, H, W) float array from a numpy array or a torch tensor."""
    if hasattr(row, "detach") and hasattr(row, "cpu"):  # torch.Tensor, without importing torch
        row = row.detach().cpu().float().numpy()
    if not isinstance(row, np.ndarray):
        raise invalid(f"rows[{index}]", _OWNER, "a numpy array or torch tensor",
                      type(row).__name__)
    if row.ndim != 4 or row.shape[1] not in (1, 3) or 0 in row.shape:
        raise invalid(f"rows[{index}]", _OWNER,
                      "a non-empty batch of shape (N, C, H, W) with C in {1, 3}",
                      f"shape {tuple(row.shape)}")
    if not (np.issubdtype(row.dtype, np.floating) or np.issubdtype(row.dtype, np.integer)
            or row.dtype == np.bool_):
        raise invalid(f"rows[{index}]", _OWNER, "a numeric array", f"dtype {row.dtype}")
    return row.astype(np.float64)


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise invalid(name, _OWNER, f"an int >= {low}", value)
    return int(value)


def image_grid_png(
    rows: list[Any],
    *,
    scale: int = 2,
    pad: int = 2,
    outlines: Any | None = None,
    outline_colour: tuple[int, int, int] = (0, 90, 255),
) -> bytes:
    """Draw batches of images as a grid and encode it as PNG.

    Row ``r`` of the grid shows ``rows[r]`` (e.g. row 0 the ground truth, row 1 the
    reconstruction), one image per column. Values are clipped to [0, 1] (NaN shows as
    0) and quantized to 8 bits; each image is upscaled by ``scale`` with
    nearest-neighbour so that 8x8 images stay visible. Grayscale rows are drawn in
    gray even when mixed with colour rows. The output size is
    ``(N * W * scale + (N + 1) * pad)`` by ``(R * H * scale + (R + 1) * pad)`` pixels,
    and equal inputs give identical bytes (no timestamps or metadata).

    Args:
        rows: Batches of shape (N, C, H, W) with C in {1, 3}, as numpy arrays or torch
            tensors (any device). All rows must share N, H and W.
        scale: Upscaling factor, an int >= 1.
        pad: Padding in output pixels between and around cells, an int >= 0.
        outlines: Optional (N, H, W) boolean masks (e.g. PSI regions) whose outer
            boundary is drawn in ``outline_colour`` on every row's image of that column
            (forces RGB output).

    Returns:
        The PNG file contents (mode "L" if every row is grayscale, else "RGB").

    Raises:
        InvalidParameterError: If ``rows`` is empty, a row has the wrong shape, the
            rows disagree on N, H or W, or ``scale``/``pad`` are out of range.
    """
    scale = _check_int("scale", scale, 1)
    pad = _check_int("pad", pad, 0)
    if not isinstance(rows, (list, tuple)):
        raise invalid("rows", _OWNER, "a list of (N, C, H, W) batches", type(rows).__name__)
    batches = [_to_numpy(row, i) for i, row in enumerate(rows)]
    if not batches:
        raise invalid("rows", _OWNER, "a non-empty list of (N, C, H, W) batches", rows)
    n, _, h, w = batches[0].shape
    for i, b in enumerate(batches[1:], start=1):
        if (b.shape[0], b.shape[2], b.shape[3]) != (n, h, w):
            raise InvalidParameterError(
                f"The 'rows' parameter of {_OWNER} must hold batches of equal N, H and W. "
                f"Got rows[0] of shape {tuple(batches[0].shape)} and rows[{i}] of shape "
                f"{tuple(b.shape)} instead."
            )
    edges = None
    if outlines is not None:
        edges = _outline_pixels(outlines, n, h, w, scale)
    channels = 3 if edges is not None or any(b.shape[1] == 3 for b in batches) else 1
    cell_h, cell_w = h * scale, w * scale
    height = len(batches) * cell_h + (len(batches) + 1) * pad
    width = n * cell_w + (n + 1) * pad
    canvas = np.full((height, width, channels), _PAD_VALUE, dtype=np.uint8)
    for r, batch in enumerate(batches):
        pixels = np.nan_to_num(batch, nan=0.0, posinf=1.0, neginf=0.0)
        pixels = np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
        pixels = pixels.transpose(0, 2, 3, 1)  # (N, H, W, C)
        if pixels.shape[-1] != channels:
            pixels = np.repeat(pixels, channels, axis=-1)
        if scale > 1:
            pixels = pixels.repeat(scale, axis=1).repeat(scale, axis=2)
        top = pad + r * (cell_h + pad)
        for c in range(n):
            left = pad + c * (cell_w + pad)
            canvas[top:top + cell_h, left:left + cell_w] = pixels[c]
            if edges is not None:
                canvas[top:top + cell_h, left:left + cell_w][edges[c]] = outline_colour
    image = Image.fromarray(canvas[:, :, 0] if channels == 1 else canvas)  # "L" or "RGB"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _outline_pixels(masks: Any, n: int, h: int, w: int, scale: int) -> np.ndarray:
    """(N, H*scale, W*scale) bool: the upscaled masks' pixels next to outside pixels."""
    m = masks.detach().cpu().numpy() if hasattr(masks, "detach") else np.asarray(masks)
    if m.shape != (n, h, w):
        raise InvalidParameterError(
            f"The 'outlines' parameter of {_OWNER} must have shape (N, H, W) = {(n, h, w)}. "
            f"Got {tuple(m.shape)} instead.")
    big = m.astype(bool).repeat(scale, axis=1).repeat(scale, axis=2)
    inner = big.copy()
    inner[:, 1:, :] &= big[:, :-1, :]
    inner[:, :-1, :] &= big[:, 1:, :]
    inner[:, :, 1:] &= big[:, :, :-1]
    inner[:, :, :-1] &= big[:, :, 1:]
    return big & ~inner


def png_base64(data: bytes) -> str:
    """Encode PNG bytes as base64 ASCII text, for ``report.json`` and data URIs.

    Args:
        data: PNG file contents.

    Returns:
        The standard base64 encoding (no line breaks).

    Raises:
        InvalidParameterError: If ``data`` is not bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise invalid("data", "png_base64", "bytes", type(data).__name__)
    return base64.b64encode(bytes(data)).decode("ascii")
