"""Generated receipts and forms with tamper masks and PSI masks (a FedRE stand-in).

FedRE (arXiv 2505.04889) evaluates a federated defense on text-tamper detection in real
receipt and document images: a model segments the tampered text regions (scored by IoU) and
each image has privacy-sensitive-information (PSI) regions. Real receipts cannot ship with
this project, so :func:`documents` *generates* a stand-in. Everything below is the project's
own choice, not the paper's data:

* **Content** comes from Faker (``en_US``): company, names, addresses, dates, tax numbers
  (EIN / VAT-like / ITIN), invoice / receipt / reference numbers, item lines with prices (a
  fixed list of product names), the total (the sum of the item lines, plus tax on the
  thermal receipt) and ID-like numbers. Layout randomness (positions, font sizes, colours,
  field order, number of items, tampering) comes from numpy Generators. Item ``i`` uses
  ``Faker.seed_instance(seed * 1_000_003 + i)`` and ``default_rng([seed, i])`` (noise:
  ``default_rng([seed, i, 1])``); templates and tampered items are drawn by
  ``default_rng(seed)``. So a seed gives bit-identical images, the same templates, fields and
  tampered items at every ``size`` (text cut to fit may differ by a character), and the
  same noise with and without tampering. Dates come from fixed ranges
  (Faker's own ``date()`` depends on today's date).
* **Rendering**: PIL with Pillow's embedded scalable default font
  (``ImageFont.load_default(size=...)``; no system font is used), drawn on a canvas 4x the
  output side (2x above 256 px) and reduced with a box filter (``Image.reduce``), then mild
  Gaussian sensor noise (sigma 1.5/255) and 8-bit quantisation.
* **Templates** (``groups``; the first ``templates`` of them are used, items are assigned
  evenly in a seeded random order): 0 ``receipt`` (shop receipt on a table, centred header,
  prices right-aligned), 1 ``thermal-receipt`` (narrow yellowish strip on a dark table,
  subtotal / tax / total block), 2 ``invoice`` (full page, coloured header band, bill-to and
  invoice blocks, shaded item table), 3 ``form`` (tinted page, labelled boxes in a shuffled
  row order, signature line).
* **PSI fields** (``psi_masks``, :data:`PSI_FIELDS`): the rendered value text (not its
  label) of the tax number ``tax_number`` (EIN; VAT-like ``GB#########``; ITIN on forms),
  the invoice / receipt / reference number ``invoice_number``, the ``total`` (total due,
  amount paid) and the ID-like number ``id_number`` (member SSN on receipts, card / loyalty
  number on thermal receipts, IBAN-like account on invoices, SSN-style ID on forms). Every
  document has all four. Each box is the text bounding box scaled to the output size with
  outward rounding. PSI masks follow the clean layout (a tampering that moves text does not
  move them).
* **Tampering**: exactly ``round(tamper_fraction * num_items)`` items (a seeded random
  choice) get 1 to 3 operations (probabilities 0.6 / 0.3 / 0.1) drawn among: *replace*
  (a value field - any recorded field: PSI fields, names, dates, times, items, prices,
  quantities - is covered with a background-coloured box, with a small tone offset, and
  re-rendered with different digits or a different name, at a slightly different size,
  offset and ink), *copy-move* (the text box of another value field of the same document is
  pasted over a value field) and *splice* (a value-field box of the previous, untampered
  document of the sequence is pasted over a value field; the first document cannot be
  spliced and uses copy-move). Tampered boxes are aligned to the reduction grid, so the
  tamper mask (``labels``, 1 = tampered) is exactly the union of the covered and pasted
  boxes at the output size; untampered items have an all-zero mask.

The result is an :class:`~audit.datasets.ImageDataset` with ``task="segmentation"``.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from audit.errors import InvalidParameterError
from audit.validation import check_interval

if TYPE_CHECKING:
    from audit.datasets import ImageDataset

TEMPLATES = ("receipt", "thermal-receipt", "invoice", "form")
PSI_FIELDS = ("tax_number", "invoice_number", "total", "id_number")
TAMPER_KINDS = ("replace", "copy-move", "splice")
NOISE_SIGMA = 1.5  # in 8-bit grey levels

PRODUCTS = (
    "Coffee", "Espresso", "Croissant", "Bagel", "Orange juice", "Milk 1L", "Bread", "Butter",
    "Eggs x12", "Apples", "Bananas", "Cheddar", "Yogurt", "Pasta", "Rice 2kg", "Olive oil",
    "Tomatoes", "Chicken", "Salmon", "Water 6pk", "Soap", "Shampoo", "Batteries", "Notebook",
    "Pens x10", "USB cable", "Light bulb", "Tea", "Chocolate", "Cookies", "Sandwich", "Salad",
    "Parking", "Delivery", "Consulting", "Service fee", "Repair", "Cleaning",
)
FORM_TITLES = ("APPLICATION FORM", "REGISTRATION FORM", "CLAIM FORM", "MEMBERSHIP FORM")

_OWNER = "dataset 'documents'"


@functools.lru_cache(maxsize=64)
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(4, int(px)))


@dataclass
class _Field:
    key: str
    text: str
    box: tuple[int, int, int, int]  # canvas pixels, x0 y0 x1 y1 (exclusive)
    xy: tuple[int, int]
    anchor: str
    size: int  # font px
    stroke: int
    fill: tuple[int, int, int]
    bg: tuple[int, int, int]
    psi: bool


class _Page:
    """A hi-res canvas with coordinates in percent of its side and a record of fields."""

    def __init__(self, side: int, rng: np.random.Generator, fake, background) -> None:
        self.side = side
        self.rng = rng
        self.fake = fake
        self.im = Image.new("RGB", (side, side), tuple(background))
        self.draw = ImageDraw.Draw(self.im)
        self.fields: list[_Field] = []

    def px(self, v: float) -> int:
        return int(round(v * self.side / 100.0))

    def j(self, a: float) -> float:
        return float(self.rng.uniform(-a, a))

    def rect(self, x0, y0, x1, y1, fill=None, outline=None, width: float = 0.0) -> None:
        w = max(1, self.px(width)) if outline is not None else 0
        a, b = self.px(x0), self.px(y0)
        self.draw.rectangle((a, b, max(a, self.px(x1) - 1), max(b, self.px(y1) - 1)),
                            fill=fill, outline=outline, width=w)

    def dashes(self, x0, x1, y, colour, dash: float = 1.6) -> None:
        h = max(1, self.px(0.35))
        x = x0
        while x < x1:
            a = self.px(x)
            self.draw.rectangle((a, self.px(y), max(a, self.px(min(x + dash, x1)) - 1), self.px(y) + h - 1),
                                fill=colour)
            x += 2 * dash

    def width(self, s: str, size: float) -> float:
        """Rendered width of ``s`` in percent of the side."""
        return _font(self.px(size)).getlength(s) * 100.0 / self.side

    def text(self, x, y, s: str, size: float, *, anchor: str = "la", fill=(25, 25, 25),
             bold: bool = False, bg=(255, 255, 255), key: str | None = None,
             max_w: float | None = None, shrink: bool = False) -> str:
        font = _font(self.px(size))
        if max_w is not None:
            if shrink:  # headers: smaller type (down to 75 %) before truncation
                while font.getlength(s) > self.px(max_w) and font.size > 0.75 * self.px(size):
                    font = _font(font.size - 1)
            s = _fit(s, font, self.px(max_w))
        xy = (self.px(x), self.px(y))
        stroke = max(1, font.size // 22) if bold else 0
        self.draw.text(xy, s, font=font, fill=tuple(fill), anchor=anchor, stroke_width=stroke,
                       stroke_fill=tuple(fill))
        if key is not None:
            box = self.draw.textbbox(xy, s, font=font, anchor=anchor, stroke_width=stroke)
            self.fields.append(_Field(key, s, _int_box(box), xy, anchor, font.size, stroke,
                                      tuple(fill), tuple(bg), key in PSI_FIELDS))
        return s


def _int_box(box) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1))


def _fit(s: str, font, width: int) -> str:
    if font.getlength(s) <= width:
        return s
    full = s
    while len(s) > 1 and font.getlength(s) > width:
        s = s[:-1]
    cut = s.rfind(" ")
    if cut >= len(s) // 2 and full[len(s):len(s) + 1] != " ":  # end on a whole word
        s = s[:cut]
    s = s.rstrip(" ,.-")
    if s.lower().endswith((" and", " &")):  # not "SMITH, JONES AND"
        s = s.rsplit(" ", 1)[0].rstrip(" ,")
    return s


def _ink(rng: np.random.Generator, low: int = 10, high: int = 50) -> tuple[int, int, int]:
    g = int(rng.integers(low, high))
    return (g, g, min(255, g + int(rng.integers(0, 12))))


def _paper(rng: np.random.Generator, tint=(0, 0, 0)) -> tuple[int, int, int]:
    base = int(rng.integers(246, 256))
    return tuple(int(np.clip(base + t + rng.integers(-2, 3), 225, 255)) for t in tint)  # type: ignore[return-value]


# Fixed date ranges: Faker's date()/time()/date_of_birth() depend on today's date, which
# would make the images change from day to day.
_ISSUED = (datetime.date(2000, 1, 1), datetime.date(2024, 12, 31))
_BIRTH = (datetime.date(1940, 1, 1), datetime.date(2005, 12, 31))


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _date(fake, pattern: str, between=_ISSUED) -> str:
    d = fake.date_between_dates(*between)
    return d.strftime(pattern.replace("%b", _MONTHS[d.month - 1]))  # %b without the C locale


def _clock(rng: np.random.Generator, *, seconds: bool) -> str:
    h, m, sec = int(rng.integers(7, 23)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    return f"{h:02d}:{m:02d}:{sec:02d}" if seconds else f"{h:02d}:{m:02d}"


def _money(v: float) -> str:
    return f"${v:,.2f}"


def _items(page: _Page, lo: int, hi: int) -> list[tuple[str, float]]:
    n = int(page.rng.integers(lo, hi + 1))
    names = page.fake.random_elements(PRODUCTS, length=n, unique=True)
    return [(name, round(float(page.rng.uniform(0.8, 60.0)), 2)) for name in names]


def _receipt(page: _Page) -> None:
    """Template 0: a shop receipt lying on a light table."""
    rng, fake = page.rng, page.fake
    x0, x1 = 9 + page.j(2), 91 + page.j(2)
    paper = _paper(rng, (0, 0, -3))
    page.rect(x0, 0, x1, 100, fill=paper)
    ink = _ink(rng)
    left, right, cx = x0 + 4, x1 - 4, (x0 + x1) / 2
    fs = 6.0 + page.j(0.3)
    pitch = fs * 1.2
    y = 2.0 + page.j(0.6)
    page.text(cx, y, fake.company().upper(), fs * 1.2, anchor="ma", fill=ink, bold=True, bg=paper,
              max_w=right - left, shrink=True)
    y += fs * 1.2 * 1.25
    page.text(cx, y, fake.street_address(), fs * 0.85, anchor="ma", fill=ink, bg=paper, max_w=right - left)
    y += pitch * 0.9
    page.text(left, y, "TAX ID", fs * 0.9, fill=ink, bg=paper)
    page.text(right, y, fake.ein(), fs * 0.9, anchor="ra", fill=ink, bg=paper, key="tax_number")
    y += pitch
    page.text(left, y, "Invoice", fs * 0.9, fill=ink, bg=paper)
    page.text(right, y, fake.bothify("INV-#####"), fs * 0.9, anchor="ra", fill=ink, bg=paper, key="invoice_number")
    y += pitch
    page.text(left, y, _date(fake, "%d/%m/%Y"), fs * 0.9, fill=ink, bg=paper, key="date")
    page.text(right, y, _clock(rng, seconds=False), fs * 0.9, anchor="ra", fill=ink, bg=paper, key="time")
    y += pitch
    page.dashes(left, right, y + 0.3, ink)
    y += fs * 0.6
    items = _items(page, 2, 4)
    for name, price in items:
        page.text(left, y, name, fs, fill=ink, bg=paper, key="item", max_w=(right - left) * 0.6)
        page.text(right, y, _money(price), fs, anchor="ra", fill=ink, bg=paper, key="price")
        y += pitch
    page.dashes(left, right, y + 0.3, ink)
    y += fs * 0.6
    page.text(left, y, "TOTAL", fs * 1.1, fill=ink, bold=True, bg=paper)
    page.text(right, y, _money(sum(p for _, p in items)), fs * 1.1, anchor="ra", fill=ink, bold=True,
              bg=paper, key="total")
    y += pitch * 1.15
    page.text(left, y, "Member", fs * 0.9, fill=ink, bg=paper)
    page.text(right, y, fake.ssn(), fs * 0.9, anchor="ra", fill=ink, bg=paper, key="id_number")
    y += pitch
    if y < 100 - fs:
        page.text(cx, y, "THANK YOU!", fs * 0.9, anchor="ma", fill=ink, bg=paper)


def _thermal(page: _Page) -> None:
    """Template 1: a narrow thermal receipt on a dark table."""
    rng, fake = page.rng, page.fake
    width = 60 + page.j(3)
    x0 = (100 - width) / 2 + page.j(3)
    x1 = x0 + width
    paper = _paper(rng, (0, -1, -8))
    page.rect(x0, 0, x1, 100, fill=paper)
    ink = _ink(rng, 35, 70)
    left, right, cx = x0 + 3, x1 - 3, (x0 + x1) / 2
    fs = 5.2 + page.j(0.25)
    pitch = fs * 1.22
    y = 1.5 + page.j(0.5)
    page.text(cx, y, "* " + fake.last_name().upper() + " MARKET *", fs * 1.05, anchor="ma", fill=ink,
              bold=True, bg=paper, max_w=right - left, shrink=True)
    y += pitch * 1.15
    page.text(left, y, _date(fake, "%Y-%m-%d"), fs, fill=ink, bg=paper, key="date")
    page.text(right, y, _clock(rng, seconds=True), fs, anchor="ra", fill=ink, bg=paper, key="time")
    y += pitch
    page.text(left, y, "RCPT", fs, fill=ink, bg=paper)
    page.text(right, y, fake.bothify("####-######"), fs, anchor="ra", fill=ink, bg=paper, key="invoice_number")
    y += pitch
    if rng.random() < 0.5:
        page.text(left, y, "CASHIER", fs, fill=ink, bg=paper)
        page.text(right, y, fake.first_name(), fs, anchor="ra", fill=ink, bg=paper, key="name")
        y += pitch
    page.dashes(left, right, y + 0.2, ink, dash=1.0)
    y += fs * 0.5
    items = _items(page, 2, 4)
    for name, price in items:
        page.text(left, y, name.upper(), fs, fill=ink, bg=paper, key="item", max_w=(right - left) * 0.58)
        page.text(right, y, f"{price:.2f}", fs, anchor="ra", fill=ink, bg=paper, key="price")
        y += pitch
    page.dashes(left, right, y + 0.2, ink, dash=1.0)
    y += fs * 0.5
    sub = sum(p for _, p in items)
    rate = float(rng.choice([5.0, 7.0, 8.0, 10.0, 20.0]))
    tax = round(sub * rate / 100, 2)
    page.text(left, y, "SUBTOTAL", fs, fill=ink, bg=paper)
    page.text(right, y, f"{sub:.2f}", fs, anchor="ra", fill=ink, bg=paper, key="subtotal")
    y += pitch
    page.text(left, y, f"TAX {rate:.0f}%", fs, fill=ink, bg=paper)
    page.text(right, y, f"{tax:.2f}", fs, anchor="ra", fill=ink, bg=paper, key="tax")
    y += pitch
    page.text(left, y, "TOTAL", fs * 1.1, fill=ink, bold=True, bg=paper)
    page.text(right, y, f"{sub + tax:.2f}", fs * 1.1, anchor="ra", fill=ink, bold=True, bg=paper, key="total")
    y += pitch * 1.2
    page.text(left, y, "VAT", fs * 0.9, fill=ink, bg=paper)
    page.text(right, y, fake.bothify("GB#########"), fs * 0.9, anchor="ra", fill=ink, bg=paper, key="tax_number")
    y += pitch
    page.text(left, y, "CARD", fs * 0.9, fill=ink, bg=paper)
    page.text(right, y, fake.bothify("##########"), fs * 0.9, anchor="ra", fill=ink, bg=paper, key="id_number")


def _hsv_colour(rng: np.random.Generator, value: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(float(rng.uniform(0, 1)), float(rng.uniform(0.45, 0.8)), value)
    return int(r * 255), int(g * 255), int(b * 255)


def _invoice(page: _Page) -> None:
    """Template 2: a full-page invoice with a coloured header band and an item table."""
    rng, fake = page.rng, page.fake
    paper = _paper(rng)
    page.rect(0, 0, 100, 100, fill=paper)
    band = _hsv_colour(rng, float(rng.uniform(0.3, 0.5)))
    ink = _ink(rng)
    grey = (110, 110, 118)
    band_h = 13 + page.j(1.5)
    page.rect(0, 0, 100, band_h, fill=band)
    fs = 5.0 + page.j(0.25)
    page.text(4, band_h / 2, "INVOICE", fs * 1.5, anchor="lm", fill=(255, 255, 255), bold=True, bg=band)
    page.text(96, band_h / 2, fake.company(), fs * 0.95, anchor="rm", fill=(255, 255, 255), bg=band, max_w=48,
              shrink=True)
    top = band_h + 4 + page.j(1)
    split = 50 + page.j(2)
    page.text(4, top, "BILL TO", fs * 0.75, fill=grey, bg=paper)
    page.text(4, top + fs * 1.05, fake.name(), fs, fill=ink, bg=paper, key="name", max_w=split - 6)
    page.text(4, top + fs * 2.3, fake.street_address(), fs * 0.85, fill=ink, bg=paper, max_w=split - 6)
    page.text(4, top + fs * 3.4, f"{fake.city()}, {fake.state_abbr()}", fs * 0.85, fill=ink, bg=paper,
              max_w=split - 6)
    rows = [("Invoice No", fake.bothify("INV-####-####"), "invoice_number"),
            ("Date", _date(fake, "%b %d, %Y"), "date"),
            ("Tax No", fake.ein(), "tax_number")]
    for k, (label, value, key) in enumerate(rows):
        yy = top + k * fs * 1.45
        page.text(split, yy, label, fs * 0.8, fill=grey, bg=paper)
        room = 96 - split - page.width(label, fs * 0.8) - 2
        page.text(96, yy, value, fs * 0.9, anchor="ra", fill=ink, bg=paper, key=key, max_w=room, shrink=True)
    ty = top + fs * 5.0 + page.j(1)
    shade = tuple(int(255 - (255 - c) * 0.18) for c in band)
    page.rect(2, ty - 1, 98, ty + fs * 1.35, fill=shade)
    qty_x = 66 + page.j(3)
    page.text(4, ty, "DESCRIPTION", fs * 0.8, fill=ink, bold=True, bg=shade)
    page.text(qty_x, ty, "QTY", fs * 0.8, anchor="ma", fill=ink, bold=True, bg=shade)
    page.text(96, ty, "AMOUNT", fs * 0.8, anchor="ra", fill=ink, bold=True, bg=shade)
    y = ty + fs * 1.9
    total = 0.0
    for name, price in _items(page, 2, 4):
        qty = int(rng.integers(1, 5))
        total += qty * price
        page.text(4, y, name, fs * 0.9, fill=ink, bg=paper, key="item", max_w=qty_x - 12)
        page.text(qty_x, y, str(qty), fs * 0.9, anchor="ma", fill=ink, bg=paper, key="qty")
        page.text(96, y, _money(qty * price), fs * 0.9, anchor="ra", fill=ink, bg=paper, key="price")
        y += fs * 1.35
    y += 0.5
    page.rect(45, y, 98, y + 0.5, fill=ink)
    y += 2.2
    amount = _money(total)
    page.text(96 - page.width(amount, fs * 1.05) - 3, y, "TOTAL DUE", fs, anchor="ra", fill=ink, bold=True, bg=paper)
    page.text(96, y, amount, fs * 1.05, anchor="ra", fill=ink, bold=True, bg=paper, key="total")
    y += fs * 1.6
    fy = 100 - fs * 2.0 + page.j(0.3)  # IBAN line
    if fy - fs * 1.1 > y + 1.5:  # room for a terms line above it
        page.rect(2, fy - fs * 1.1 - 1.2, 98, fy - fs * 1.1 - 0.9, fill=(200, 200, 205))
        days = int(rng.choice([14, 30, 45, 60]))
        page.text(4, fy - fs * 1.1, f"Payment due within {days} days. Thank you for your business!", fs * 0.7,
                  fill=grey, bg=paper, max_w=92)
    fy = max(fy, y + 0.5)
    page.text(4, fy, "IBAN", fs * 0.8, fill=grey, bg=paper)
    page.text(4 + page.width("IBAN ", fs * 0.8), fy, fake.bothify("GB## ???? #### #### ##").upper(), fs * 0.8,
              fill=ink, bg=paper, key="id_number")


def _form(page: _Page) -> None:
    """Template 3: a tinted form with labelled boxes in a shuffled row order."""
    rng, fake = page.rng, page.fake
    tint = [(-4, -1, 2), (-4, 1, -3), (1, -3, -3), (0, 0, 0)][int(rng.integers(0, 4))]
    paper = _paper(rng, tint)
    page.rect(0, 0, 100, 100, fill=paper)
    ink = _ink(rng)
    line = (120, 124, 135)
    box_fill = (255, 255, 255) if rng.random() < 0.6 else paper
    fs = 5.0 + page.j(0.25)
    y = 2.5 + page.j(0.6)
    page.text(50, y, str(fake.random_element(FORM_TITLES)), fs * 1.25, anchor="ma", fill=ink, bold=True, bg=paper)
    y += fs * 1.6
    page.rect(20, y, 80, y + 0.5, fill=ink)
    y += 2.5
    split = 55 + page.j(4)
    rows = [
        [("Full name", fake.name(), "name", 4, split - 2),
         ("Date of birth", _date(fake, "%d.%m.%Y", _BIRTH), "date", split, 96)],
        [("Address", f"{fake.street_address()}, {fake.city()}", "address", 4, 96)],
        [("ID number", fake.ssn(), "id_number", 4, split - 2), ("Tax number", fake.itin(), "tax_number", split, 96)],
        [("Reference no.", fake.bothify("REF-######"), "invoice_number", 4, split - 2),
         ("Amount paid", _money(round(float(rng.uniform(10, 900)), 2)), "total", split, 96)],
    ]
    first, rest = rows[0], rows[1:]
    rest = [rest[k] for k in rng.permutation(len(rest))]
    label_fs, box_h = fs * 0.72, fs * 1.55
    for row in [first, *rest]:
        if rng.random() < 0.5 and len(row) == 2:  # swap columns' contents (keep geometry)
            (l0, v0, k0, a0, b0), (l1, v1, k1, a1, b1) = row
            row = [(l1, v1, k1, a0, b0), (l0, v0, k0, a1, b1)]
        for label, value, key, a, b in row:
            page.text(a, y, label, label_fs, fill=line, bg=paper)
            by = y + label_fs * 1.15
            page.rect(a, by, b, by + box_h, fill=box_fill, outline=line, width=0.3)
            page.text(a + 1.5, by + box_h / 2, value, fs, anchor="lm", fill=ink, bg=box_fill, key=key,
                      max_w=b - a - 3)
        y += label_fs * 1.15 + box_h + 3.0
    y = max(y + 2, 100 - fs * 2.2)
    page.rect(4, y, 45, y + 0.35, fill=line)
    page.text(4, y + 1, "Signature", label_fs, fill=line, bg=paper)
    page.text(96, y - fs * 1.2, _date(fake, "%d.%m.%Y"), fs * 0.9, anchor="ra", fill=ink, bg=paper, key="date")


_LAYOUTS = (_receipt, _thermal, _invoice, _form)
_BACKGROUNDS = {0: ((196, 222), (4, 10)), 1: ((70, 120), (6, 16))}  # table grey range, warm shift


def _background(template: int, rng: np.random.Generator) -> tuple[int, int, int]:
    if template not in _BACKGROUNDS:
        return (255, 255, 255)
    (lo, hi), (wlo, whi) = _BACKGROUNDS[template]
    g = int(rng.integers(lo, hi))
    w = int(rng.integers(wlo, whi))
    return (min(255, g + w), g + w // 3, max(0, g - w // 2))


def _render(template: int, side: int, fake, rng: np.random.Generator) -> _Page:
    page = _Page(side, rng, fake, _background(template, rng))
    _LAYOUTS[template](page)
    return page


# ----------------------------------------------------------------------------- tampering

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


# ----------------------------------------------------------------------------- dataset

def _scale_for(size: int) -> int:
    return 4 if size <= 256 else 2


def _psi_mask(page: _Page, scale: int, out: int) -> np.ndarray:
    mask = np.zeros((out, out), dtype=bool)
    for f in page.fields:
        if f.psi:
            x0, y0, x1, y1 = f.box
            x0, y0 = max(0, x0 // scale), max(0, y0 // scale)
            x1, y1 = min(out, -(-x1 // scale)), min(out, -(-y1 // scale))
            if x1 > x0 and y1 > y0:
                mask[y0:y1, x0:x1] = True
    return mask


_ITEM_STRIDE = 1_000_003  # > the largest num_items, so (seed, item) -> Faker seed is one-to-one


@functools.lru_cache(maxsize=16)
def _generate(size: int, num_items: int, seed: int, tamper_fraction: float, templates: int) -> "ImageDataset":
    from faker import Faker

    from audit.datasets import from_arrays

    fake = Faker("en_US")
    rng = np.random.default_rng(seed)
    scale = _scale_for(size)
    side = size * scale
    template_of = rng.permutation(np.arange(num_items) % templates)
    tampered = np.zeros(num_items, dtype=bool)
    tampered[rng.permutation(num_items)[: int(round(tamper_fraction * num_items))]] = True
    images = np.empty((num_items, size, size, 3), dtype=np.uint8)
    tamper = np.zeros((num_items, size, size), dtype=bool)
    psi = np.zeros((num_items, size, size), dtype=bool)
    donor: _Donor | None = None
    for i in range(num_items):
        # per-item streams: the same seed gives the same documents at every size
        fake.seed_instance(seed * _ITEM_STRIDE + i)
        page = _render(int(template_of[i]), side, fake, np.random.default_rng([seed, i]))
        psi[i] = _psi_mask(page, scale, size)
        clean = _Donor(page.im.copy(), [dataclasses.replace(f) for f in page.fields])
        if tampered[i]:
            tamper[i] = _tamper(page, donor, scale, size)
        donor = clean
        small = np.asarray(page.im.reduce(scale), dtype=np.float64)
        # own stream: the tampered and untampered versions of an item get the same noise
        noise = np.random.default_rng([seed, i, 1]).normal(0.0, NOISE_SIGMA, size=small.shape)
        images[i] = np.clip(np.rint(small + noise), 0, 255).astype(np.uint8)
    ds = from_arrays("documents", images.astype(np.float32) / np.float32(255.0), tamper.astype(np.int64), 2,
                     f"generated receipts and forms (Faker + PIL), {templates} templates, seed {seed}", None)
    return dataclasses.replace(ds, task="segmentation", psi_masks=torch.from_numpy(psi),
                               groups=torch.as_tensor(template_of, dtype=torch.long),
                               class_weights=TAMPER_CLASS_WEIGHTS)


#: the task's cross-entropy class weights (authentic, tampered): tampered pixels are ~2% of
#: the pixels, and unweighted cross-entropy learns to predict none of them (project choice)
TAMPER_CLASS_WEIGHTS = (1.0, 10.0)


def documents(*, size: int = 64, num_items: int = 256, seed: int = 0, tamper_fraction: float = 0.8,
              templates: int = 4) -> "ImageDataset":
    """Generated receipts and forms (size x size RGB) with tamper masks and PSI masks.

    ``labels`` are the tamper masks (N, H, W) in {0, 1} (``task="segmentation"``,
    ``num_classes=2``), ``psi_masks`` the PSI regions, ``groups`` the template id (see the
    module docstring for the choices). The same parameters give the same (cached) object:
    do not modify its tensors in place.
    """
    size = check_interval("size", _OWNER, size, kind=int, low=32, high=512)
    num_items = check_interval("num_items", _OWNER, num_items, kind=int, low=1, high=100_000)
    seed = check_interval("seed", _OWNER, seed, kind=int, low=0, high=2**32 - 1)
    tamper_fraction = check_interval("tamper_fraction", _OWNER, tamper_fraction, kind=float, low=0.0, high=1.0)
    templates = check_interval("templates", _OWNER, templates, kind=int, low=1, high=len(TEMPLATES))
    return _generate(size, num_items, seed, tamper_fraction, templates)


def template_split(groups: torch.Tensor, num_clients: int, *, seed: int) -> list[np.ndarray]:
    """Non-IID client splits by template: each client holds items of (mostly) one template.

    Choice: when ``num_clients >= #templates``, every template gets one client and each
    further client goes to the template with the most items per client so far (ties: lower
    template id), which is round-robin for equal-size templates; a template's items are
    shuffled (``seed``) and divided as evenly as possible among its clients, so every client
    holds a single template. When ``num_clients < #templates``, whole templates are packed
    onto clients (largest template first, onto the client with the fewest items), so a client
    may hold several templates. Every item is in exactly one client and no client is empty;
    ``num_clients > len(groups)`` is an error. Returns sorted int64 index arrays.
    """
    g = np.asarray(torch.as_tensor(groups).detach().cpu()).reshape(-1)
    n = len(g)
    if n == 0:
        raise InvalidParameterError("The 'groups' parameter of template_split must be non-empty. Got 0 items instead.")
    num_clients = check_interval("num_clients", "template_split", num_clients, kind=int, low=1)
    if num_clients > n:
        raise InvalidParameterError(
            f"The 'num_clients' parameter of template_split must be at most the number of items ({n}). "
            f"Got {num_clients!r} instead.")
    seed = check_interval("seed", "template_split", seed, kind=int, low=0)
    rng = np.random.default_rng(seed)
    values, inverse = np.unique(g, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(inverse == t)) for t in range(len(values))]
    sizes = np.array([len(m) for m in members])
    if num_clients >= len(values):
        counts = np.ones(len(values), dtype=int)
        for _ in range(num_clients - len(values)):
            counts[int(np.argmax(sizes / counts))] += 1
        parts = [np.sort(p) for m, c in zip(members, counts) for p in np.array_split(m, c)]
    else:
        bins: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        load = np.zeros(num_clients, dtype=int)
        for t in np.argsort(-sizes, kind="stable"):
            c = int(np.argmin(load))
            bins[c].append(members[t])
            load[c] += sizes[t]
        parts = [np.sort(np.concatenate(b)) for b in bins]
    return [p.astype(np.int64) for p in parts]


# ----------------------------------------------------------------------------- picture

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
