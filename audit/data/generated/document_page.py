"""The page that generated documents are drawn on: fonts, recorded fields, colours, dates, money.

A :class:`_Page` is a hi-res square canvas with coordinates in percent of its side; every
value it draws with a ``key`` is recorded as a :class:`_Field` (text, canvas box, font, ink,
background), which the PSI masks (:mod:`audit.data.generated.documents`) and the tampering
(:mod:`audit.data.generated.document_tampering`) use. The layouts that draw on it are in
:mod:`audit.data.generated.document_layouts`. FedRE (arXiv 2505.04889) uses real receipts;
everything below is the project's own choice, not the paper's data:

* **Content** comes from Faker (``en_US``) through the page's ``fake``: company, names,
  addresses, dates, tax numbers (EIN / VAT-like / ITIN), invoice / receipt / reference
  numbers, item lines with prices (names from the fixed list :data:`PRODUCTS`) and ID-like
  numbers. Layout randomness (positions, font sizes, colours, field order, number of items)
  comes from the page's numpy Generator ``rng``. Dates come from fixed ranges (Faker's own
  ``date()`` depends on today's date).
* **Rendering**: PIL with Pillow's embedded scalable default font
  (``ImageFont.load_default(size=...)``; no system font is used). Text cut to fit a width
  ends on a whole word where it can; headers first shrink to 75 % of their size.
* **PSI fields** (:data:`PSI_FIELDS`): a recorded field whose key is one of them is marked
  ``psi``; its box is the bounding box of the rendered value text (not of its label).
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PSI_FIELDS = ("tax_number", "invoice_number", "total", "id_number")

PRODUCTS = (
    "Coffee", "Espresso", "Croissant", "Bagel", "Orange juice", "Milk 1L", "Bread", "Butter",
    "Eggs x12", "Apples", "Bananas", "Cheddar", "Yogurt", "Pasta", "Rice 2kg", "Olive oil",
    "Tomatoes", "Chicken", "Salmon", "Water 6pk", "Soap", "Shampoo", "Batteries", "Notebook",
    "Pens x10", "USB cable", "Light bulb", "Tea", "Chocolate", "Cookies", "Sandwich", "Salad",
    "Parking", "Delivery", "Consulting", "Service fee", "Repair", "Cleaning",
)


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
