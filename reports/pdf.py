"""PDF rendering of a simple HTML document with fpdf2, and helpers to read a PDF back.

:func:`html_to_pdf` renders a *simple* HTML subset through fpdf2's ``write_html``: ``h1``-
``h3``, ``p``, ``br``, ``ul``/``ol``/``li``, ``table``/``tr``/``th``/``td``, ``b``/``i``/
``code``/``pre`` and ``img`` whose ``src`` is a ``data:image/png;base64,...`` URI. It is no
browser: CSS is ignored (``<style>``, ``<script>`` and ``<title>`` blocks are dropped), and
no local file or remote URL is ever loaded (an ``img`` that is not a data URI is an error).
Text uses the Unicode TrueType font DejaVu Sans (found in matplotlib's bundled fonts, a
project dependency, else Debian's ``fonts-dejavu-core``), so ε, δ, ≤ and the like print as
themselves; only where neither is found does it fall back to the PDF core font Helvetica
with the text transliterated to Latin-1 (``ε`` -> ``epsilon``, ``≤`` -> ``<=``). Pages are
numbered in the footer ("Page n of N"). The file is written atomically: the whole PDF is
built in memory, then :func:`reports.io.write_bytes_atomic` writes it to a temporary file
beside ``path`` and moves it over with :func:`os.replace`, so an error leaves no file (or
the previous one) behind.

:func:`pdf_text` (pypdf) and :func:`pdf_first_page_png` (poppler's ``pdftoppm``) read a PDF
back, for tests and for looking at the result.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

from reports.io import write_bytes_atomic

INSTALL_HINT = "bash scripts/install-test-deps.sh"
#: the font family name the TrueType font is registered under
FONT_FAMILY = "DejaVu"
#: the core-font fallback when no DejaVu TTF is found
CORE_FAMILY = "helvetica"
_DEBIAN_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_STYLE_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf",
                "I": "DejaVuSans-Oblique.ttf", "BI": "DejaVuSans-BoldOblique.ttf"}
_MONO_FILES = {"": "DejaVuSansMono.ttf", "B": "DejaVuSansMono-Bold.ttf",
               "I": "DejaVuSansMono-Oblique.ttf", "BI": "DejaVuSansMono-BoldOblique.ttf"}
_DROP_BLOCKS = re.compile(r"<(style|script|title)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
#: transliterations for the core-font fallback (everything else: NFKD, Greek names, "?")
_TRANSLIT = {
    "\u2264": "<=", "\u2265": ">=", "\u2260": "!=", "\u2248": "~", "\u2212": "-",
    "\u2013": "-", "\u2014": "--", "\u2018": "'", "\u2019": "'", "\u201c": '"',
    "\u201d": '"', "\u2026": "...", "\u2022": "*", "\u2191": "^", "\u2193": "v",
    "\u2192": "->", "\u2190": "<-", "\u221e": "inf", "\u221a": "sqrt", "\u2211": "sum",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ",
}


def font_files() -> tuple[dict[str, Path], dict[str, Path]] | None:
    """The DejaVu Sans and Sans Mono TTF files per style ("", "B", "I", "BI"), or None.

    matplotlib's bundled fonts (all four styles of both) come first; Debian's
    ``fonts-dejavu-core`` ships regular and bold only, and a missing italic falls back to
    the upright face of the same weight. None when no regular DejaVuSans.ttf is found.
    """
    dirs = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            dirs.append(Path(loc) / "mpl-data" / "fonts" / "ttf")
    dirs.append(_DEBIAN_FONT_DIR)
    for directory in dirs:
        if (directory / _STYLE_FILES[""]).is_file():
            return _styles(directory, _STYLE_FILES), _styles(directory, _MONO_FILES)
    return None


def _styles(directory: Path, names: dict[str, str]) -> dict[str, Path]:
    found = {s: directory / n for s, n in names.items() if (directory / n).is_file()}
    if "" not in found:  # no mono face: use the sans one
        found = _styles(directory, _STYLE_FILES)
    found.setdefault("B", found[""])
    found.setdefault("I", found[""])
    found.setdefault("BI", found["B"])
    return found


def transliterate(text: str) -> str:
    """``text`` in Latin-1 for the PDF core fonts: ``ε`` -> ``epsilon``, ``≤`` -> ``<=``."""
    out = []
    for ch in text:
        if ord(ch) < 256:
            out.append(ch)
        elif ch in _TRANSLIT:
            out.append(_TRANSLIT[ch])
        else:
            name = unicodedata.name(ch, "")
            if name.startswith(("GREEK SMALL LETTER ", "GREEK CAPITAL LETTER ")):
                word = name.split(" LETTER ", 1)[1].split()[0].lower()
                out.append(word if "SMALL" in name else word.capitalize())
                continue
            ascii_ = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
            out.append(ascii_ or "?")
    return "".join(out)


def _pdf_class():
    from fpdf import FPDF
    from fpdf.image_datastructures import RasterImageInfo
    from fpdf.image_parsing import preload_image

    class _ReportPDF(FPDF):
        footer_family = CORE_FAMILY

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(self.footer_family, "", 8)
            self.set_text_color(110, 110, 110)
            self.cell(0, 6, f"Page {self.page_no()} of {{nb}}", align="C")
            self.set_text_color(0, 0, 0)

        def image(self, name, x=None, y=None, w=0, h=0, *args, **kwargs):
            # An image with no size is put at 72 dpi; one wider than the text column would
            # run off the page, so shrink it to fit (keeping its aspect ratio).
            if w == 0 and h == 0 and self.page:
                _, _, info = preload_image(self.image_cache, name, None,
                                           resource_access_policy=self.resource_access_policy,
                                           svg_limits=self.svg_limits)
                if isinstance(info, RasterImageInfo):
                    natural_w, _ = info.size_in_document_units(0, 0, scale=self.k)
                    left = x if isinstance(x, (int, float)) else self.l_margin
                    available = self.w - self.r_margin - left
                    if natural_w > available:
                        w = available
            return super().image(name, x, y, w, h, *args, **kwargs)

    return _ReportPDF


def render_pdf_bytes(html: str, *, title: str) -> bytes:
    """Render ``html`` (the simple subset of :func:`html_to_pdf`) to PDF bytes in memory."""
    from fpdf import FontFace
    from fpdf.enums import ResourceAccessPolicy

    html = _DROP_BLOCKS.sub("", html)
    pdf = _pdf_class()(orientation="portrait", unit="mm", format="A4")
    pdf.resource_access_policy = ResourceAccessPolicy.NONE  # data: URIs only
    pdf.set_title(title)
    pdf.set_creator("fedaudit")
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_margins(15, 15, 15)
    fonts = font_files()
    if fonts is None:
        family, mono = CORE_FAMILY, "courier"
        html = transliterate(html)
        title = transliterate(title)
        pdf.set_title(title)
    else:
        sans, monos = fonts
        family, mono = FONT_FAMILY, FONT_FAMILY + "Mono"
    try:
        if fonts is not None:
            for style, path in sans.items():
                pdf.add_font(family, style, str(path))
            for style, path in monos.items():
                pdf.add_font(mono, style, str(path))
        pdf.footer_family = family
        pdf.add_page()
        pdf.set_font(family, "", 10)
        pdf.write_html(
            html,
            font_family=family,
            table_line_separators=True,
            warn_on_tags_not_matching=False,
            tag_styles={
                "h1": FontFace(family=family, emphasis="BOLD", size_pt=18, color=(20, 20, 20)),
                "h2": FontFace(family=family, emphasis="BOLD", size_pt=14, color=(20, 20, 20)),
                "h3": FontFace(family=family, emphasis="BOLD", size_pt=11.5, color=(20, 20, 20)),
                "code": FontFace(family=mono, size_pt=9),
                "pre": FontFace(family=mono, size_pt=9),
            },
        )
        return bytes(pdf.output())
    finally:  # fpdf2 leaves unused (or, on an error, all) TTF files open
        for font in pdf.fonts.values():
            close = getattr(font, "close", None)
            if close is not None:
                close()


def html_to_pdf(html: str, path: str | os.PathLike, *, title: str) -> Path:
    """Render a simple HTML string to a PDF file, atomically.

    Args:
        html: HTML in the subset fpdf2 renders: ``h1``-``h3``, ``p``, ``br``, ``ul``/``ol``/
            ``li``, ``table``/``tr``/``th``/``td``, ``b``/``i``/``code``/``pre``, ``img``
            with a ``data:image/png;base64,...`` source (an image wider than the text
            column is shrunk to fit). ``<style>``/``<script>``/``<title>`` blocks are dropped.
        path: The PDF file to write; its folder must exist. An existing file is replaced
            (keeping its permissions), through :func:`reports.io.write_bytes_atomic`.
        title: The document title (PDF metadata).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InvalidParameterError: If ``path`` is a directory or its folder does not exist.
        Exception: Whatever fpdf2 raises on HTML it cannot render (e.g. an undecodable or
            non-data image); then no file is written and an existing one is left as it was.
    """
    path = Path(path)
    data = render_pdf_bytes(html, title=title)  # all rendering happens before any write
    write_bytes_atomic(path, data)
    return path


def pdf_text(path: str | os.PathLike) -> str:
    """The text of every page of a PDF (pypdf), pages separated by a newline."""
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def pdf_page_count(path: str | os.PathLike) -> int:
    """The number of pages of a PDF (pypdf)."""
    from pypdf import PdfReader

    return len(PdfReader(str(path)).pages)


def pdf_first_page_png(path: str | os.PathLike, out_png: str | os.PathLike, *,
                       dpi: int = 100, timeout: float = 60) -> Path:
    """Rasterize the first page of a PDF to ``out_png`` with poppler's ``pdftoppm``.

    Raises:
        RuntimeError: If ``pdftoppm`` is not installed (``poppler-utils``), or it fails.
    """
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise RuntimeError("pdftoppm (Debian package poppler-utils) is not installed; "
                           f"install it with: {INSTALL_HINT}")
    out_png = Path(out_png)
    if out_png.suffix.lower() != ".png":
        raise ValueError(f"out_png must end with .png, got {str(out_png)!r}")
    root = out_png.with_suffix("")  # pdftoppm -singlefile appends ".png"
    proc = subprocess.run([exe, "-png", "-r", str(int(dpi)), "-f", "1", "-l", "1",
                           "-singlefile", str(path), str(root)],
                          capture_output=True, text=True, timeout=timeout, check=False)
    produced = root.with_name(root.name + ".png")
    if proc.returncode != 0 or not produced.is_file():
        raise RuntimeError(f"pdftoppm failed on {path} (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-500:]}")
    if produced != out_png:
        os.replace(produced, out_png)
    return out_png
