"""A picture of generated documents with their PSI and tamper regions (the README's picture).

:func:`document_gallery` lays out documents of a :func:`~audit.data.generated.documents.documents`
dataset (or any segmentation dataset with ``psi_masks``) on a grid: PSI regions outlined in
blue, tampered regions tinted and outlined in red, a caption (index, template, tampered)
under each; ``tests/data/test_documents.py`` writes it to ``docs/documents.png``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image, ImageDraw

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval
from audit.data.generated.document_layouts import TEMPLATES
from audit.data.generated.document_page import _font

if TYPE_CHECKING:
    from audit.data.dataset import ImageDataset


def _edges(mask: np.ndarray, width: int) -> np.ndarray:
    """A ``width``-pixel outline just outside ``mask`` (the masked text stays visible)."""
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, iterations=width) & ~mask


def document_gallery(ds: "ImageDataset", indices: Sequence[int], *, tile: int = 256, columns: int = 3) -> Image.Image:
    """A grid of documents upscaled to ``tile`` px: PSI regions outlined in blue, tampered
    regions tinted and outlined in red, a caption (index, template, tampered) under each."""
    indices = [int(i) for i in indices]
    if not indices:
        raise InvalidParameterError("The 'indices' parameter of document_gallery must be non-empty. Got [] instead.")
    tile = check_interval("tile", "document_gallery", tile, kind=int, low=16, high=2048)
    columns = max(1, min(check_interval("columns", "document_gallery", columns, kind=int, low=1), len(indices)))
    rows = -(-len(indices) // columns)
    pad, caption, header = 8, 22, 26
    sheet = Image.new("RGB", (columns * (tile + pad) + pad, header + rows * (tile + caption + pad)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font(14)
    draw.text((pad, 6), "blue: PSI regions    red: tampered regions", font=font, fill=(40, 40, 40))
    line = max(2, tile // 128)
    for k, i in enumerate(indices):
        img = ds.images[i].detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
        pil = Image.fromarray(np.rint(img * 255).astype(np.uint8)).resize((tile, tile), Image.Resampling.NEAREST)
        arr = np.asarray(pil, dtype=np.float64).copy()

        def up(m) -> np.ndarray:
            m = np.asarray(m.detach().cpu(), dtype=np.uint8) * 255
            return np.asarray(Image.fromarray(m).resize((tile, tile), Image.Resampling.NEAREST)) > 0

        tam = up(ds.labels[i] > 0) if ds.labels.dim() == 3 else np.zeros((tile, tile), bool)
        arr[tam] = 0.75 * arr[tam] + 0.25 * np.array([235.0, 40.0, 40.0])
        if ds.psi_masks is not None:
            arr[_edges(up(ds.psi_masks[i]), line)] = (30, 80, 230)
        arr[_edges(tam, line)] = (220, 20, 20)
        x = pad + (k % columns) * (tile + pad)
        y = header + (k // columns) * (tile + caption + pad)
        sheet.paste(Image.fromarray(np.rint(arr).astype(np.uint8)), (x, y))
        t = -1 if ds.groups is None else int(ds.groups[i])
        g = TEMPLATES[t] if 0 <= t < len(TEMPLATES) else ("?" if ds.groups is None else f"group {t}")
        state = "tampered" if bool(tam.any()) else "authentic"
        draw.text((x, y + tile + 3), f"#{i}  {g}  {state}", font=font, fill=(40, 40, 40))
    return sheet
