"""Audit reports: the ``report.json`` schema, atomic I/O and HTML/Markdown renderings.

``report.json`` is the source of truth; :func:`render_html` and :func:`render_markdown`
are renderings of it. This package only validates, renders, reads and writes: it
computes no results (the one derived number it shows, the advantage of an attack over
its baseline, is a plain difference of two numbers stored in the report).
"""

from reports.html import render_html
from reports.images import image_grid_png, png_base64
from reports.io import (
    load_report,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from reports.markdown import render_markdown
from reports.schema import SCHEMA_VERSION, VOLATILE_KEYS, strip_volatile, validate_report

__all__ = [
    "SCHEMA_VERSION",
    "VOLATILE_KEYS",
    "image_grid_png",
    "load_report",
    "png_base64",
    "render_html",
    "render_markdown",
    "strip_volatile",
    "validate_report",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
