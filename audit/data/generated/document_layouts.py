"""The four document templates drawn on a :class:`~audit.data.generated.document_page._Page`.

FedRE (arXiv 2505.04889) evaluates on real receipt and document images; these layouts are
the project's own choice, not the paper's data. ``TEMPLATES[t]`` names template ``t`` (a
document's ``groups`` entry, see :mod:`audit.data.generated.documents`):

* **Templates**: 0 ``receipt`` (shop receipt on a table, centred header, prices
  right-aligned), 1 ``thermal-receipt`` (narrow yellowish strip on a dark table, subtotal /
  tax / total block), 2 ``invoice`` (full page, coloured header band, bill-to and invoice
  blocks, shaded item table), 3 ``form`` (tinted page, labelled boxes in a shuffled row
  order, signature line). The total is the sum of the item lines (plus tax on the thermal
  receipt).
* **PSI fields** (:data:`~audit.data.generated.document_page.PSI_FIELDS`): every document
  has all four: the tax number ``tax_number`` (EIN; VAT-like ``GB#########``; ITIN on
  forms), the invoice / receipt / reference number ``invoice_number``, the ``total`` (total
  due, amount paid) and the ID-like number ``id_number`` (member SSN on receipts, card /
  loyalty number on thermal receipts, IBAN-like account on invoices, SSN-style ID on forms).

:func:`_render` draws one document: the table or page background, then its template.
"""

from __future__ import annotations

import numpy as np

from audit.data.generated.document_page import (
    _BIRTH,
    _clock,
    _date,
    _ink,
    _items,
    _money,
    _Page,
    _paper,
)

TEMPLATES = ("receipt", "thermal-receipt", "invoice", "form")
FORM_TITLES = ("APPLICATION FORM", "REGISTRATION FORM", "CLAIM FORM", "MEMBERSHIP FORM")


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
