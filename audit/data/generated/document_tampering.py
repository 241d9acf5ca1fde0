"""Tampering of a generated document: replace, copy-move and splice, with the tamper mask.

FedRE (arXiv 2505.04889) segments tampered text regions (scored by IoU); this tampering is
the project's own choice, not the paper's data. :func:`_tamper` edits a drawn
:class:`~audit.data.generated.document_page._Page` in place (which items are tampered is
drawn in :mod:`audit.data.generated.documents`):

* **Operations**: 1 to 3 (probabilities 0.6 / 0.3 / 0.1) drawn among :data:`TAMPER_KINDS`:
  *replace* (a value field - any recorded field: PSI fields, names, dates, times, items,
  prices, quantities - is covered with a background-coloured box, with a small tone offset,
  and re-rendered with different digits or a different name, at a slightly different size,
  offset and ink), *copy-move* (the text box of another value field of the same document is
  pasted over a value field) and *splice* (a value-field box of the previous, untampered
  document of the sequence, a :class:`_Donor`, is pasted over a value field; the first
  document cannot be spliced and uses copy-move).
* **Tamper mask**: tampered boxes are aligned to the reduction grid, so the mask (at the
  output size, ``True`` = tampered) is exactly the union of the covered and pasted boxes;
  no pixel outside them changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from audit.data.generated.document_page import _Field, _font, _int_box, _Page

TAMPER_KINDS = ("replace", "copy-move", "splice")


def _align(box, scale: int, side: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (max(0, (x0 // scale) * scale), max(0, (y0 // scale) * scale),
            min(side, -(-x1 // scale) * scale), min(side, -(-y1 // scale) * scale))


def _grow(box, m: int) -> tuple[int, int, int, int]:
    return box[0] - m, box[1] - m, box[2] + m, box[3] + m


def _mark(mask: np.ndarray, box, scale: int) -> None:
    x0, y0, x1, y1 = box
    if x1 > x0 and y1 > y0:
        mask[y0 // scale: y1 // scale, x0 // scale: x1 // scale] = True


def _shift(colour, d: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + d, 0, 255)) for c in colour)  # type: ignore[return-value]


def _altered(text: str, fake, rng: np.random.Generator) -> str:
    digits = [k for k, ch in enumerate(text) if ch.isdigit()]
    if not digits:
        for _ in range(5):
            new = fake.last_name() if " " not in text else fake.name()
            if new != text:
                return new
        return text[::-1] if text[::-1] != text else text + "s"
    chars = list(text)
    for k in rng.choice(digits, size=min(len(digits), int(rng.integers(1, 4))), replace=False):
        chars[k] = str((int(chars[k]) + int(rng.integers(1, 10))) % 10)
    return "".join(chars)


def _clear(page: _Page, field: _Field, scale: int, mask: np.ndarray, rng: np.random.Generator):
    margin = max(1, page.side // 200)
    box = _align(_grow(field.box, margin), scale, page.side)
    page.draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=_shift(field.bg, int(rng.integers(-4, 5))))
    _mark(mask, box, scale)
    return box


def _replace(page: _Page, field: _Field, scale: int, mask: np.ndarray) -> None:
    rng = page.rng
    new = _altered(field.text, page.fake, rng)
    _clear(page, field, scale, mask, rng)
    size = max(4, int(round(field.size * float(rng.uniform(0.93, 1.07)))))
    font = _font(size)
    d = max(1, page.side // 250)
    xy = (field.xy[0] + int(rng.integers(-d, d + 1)), field.xy[1] + int(rng.integers(-d, d + 1)))
    fill = _shift(field.fill, int(rng.integers(-12, 13)))
    text_box = _int_box(page.draw.textbbox(xy, new, font=font, anchor=field.anchor, stroke_width=field.stroke))
    box = _align(text_box, scale, page.side)
    if box[2] <= box[0] or box[3] <= box[1]:  # the new text fell off the canvas
        field.text = ""
        return
    # draw on a clipped patch so no pixel outside the marked boxes changes
    patch = Image.new("RGB", (box[2] - box[0], box[3] - box[1]))
    patch.paste(page.im.crop(box))
    ImageDraw.Draw(patch).text((xy[0] - box[0], xy[1] - box[1]), new, font=font, fill=fill,
                               anchor=field.anchor, stroke_width=field.stroke, stroke_fill=fill)
    page.im.paste(patch, box[:2])
    _mark(mask, box, scale)
    field.text = new


def _paste(page: _Page, source: Image.Image, src: _Field, dst: _Field, scale: int, mask: np.ndarray) -> None:
    margin = max(1, page.side // 200)
    sbox = _align(_grow(src.box, margin), scale, source.width)
    crop = source.crop(sbox)
    _clear(page, dst, scale, mask, page.rng)
    dbox = _align(_grow(dst.box, margin), scale, page.side)
    x = dbox[0] if dst.anchor[0] == "l" else (dbox[2] - crop.width if dst.anchor[0] == "r" else
                                              (dbox[0] + dbox[2] - crop.width) // 2)
    x = (x // scale) * scale
    cy = (dbox[1] + dbox[3]) // 2 - crop.height // 2
    y = (cy // scale) * scale
    x = int(np.clip(x, 0, page.side - crop.width))
    y = int(np.clip(y, 0, page.side - crop.height))
    x, y = (x // scale) * scale, (y // scale) * scale
    page.im.paste(crop, (x, y))
    _mark(mask, (x, y, min(page.side, x + crop.width), min(page.side, y + crop.height)), scale)
    dst.text = src.text


@dataclass
class _Donor:
    """The untampered previous document: the source of splices."""

    im: Image.Image
    fields: list[_Field]


def _tamper(page: _Page, donor: _Donor | None, scale: int, out: int) -> np.ndarray:
    rng = page.rng
    mask = np.zeros((out, out), dtype=bool)
    n_ops = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
    fields = page.fields
    for _ in range(n_ops):
        kind = TAMPER_KINDS[int(rng.integers(0, 3))]
        if kind == "splice" and (donor is None or not donor.fields):
            kind = "copy-move"
        dst = fields[int(rng.integers(0, len(fields)))]
        if kind == "replace":
            _replace(page, dst, scale, mask)
            continue
        pool = donor.fields if kind == "splice" else [f for f in fields if f is not dst]
        has_digit = any(ch.isdigit() for ch in dst.text)
        similar = [f for f in pool if any(ch.isdigit() for ch in f.text) == has_digit] or pool
        src = similar[int(rng.integers(0, len(similar)))]
        _paste(page, donor.im if kind == "splice" else page.im, src, dst, scale, mask)
    return mask
