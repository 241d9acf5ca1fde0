"""PDF rendering of simple HTML (reports.pdf): text, Unicode, images, pages, atomic write.

pdftoppm (poppler-utils) is required, never skipped: without it the tests fail and say how
to install it (``bash scripts/install-test-deps.sh``, which CI runs).
"""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest
from PIL import Image

from reports import pdf as pdf_module
from reports.pdf import html_to_pdf, pdf_first_page_png, pdf_page_count, pdf_text

HEADINGS = ("Privacy audit of dp-fedavg", "Summary of findings", "Reconstructed images")
IMAGE_RGB = (0, 90, 255)  # a colour nothing else on the page has


def _image_mask(rgb: Image.Image) -> np.ndarray:
    """Pixels (row, column) of the test image's colour."""
    return (np.abs(np.asarray(rgb, dtype=int) - IMAGE_RGB) <= 8).all(axis=-1)


def _png_uri(size=(160, 80), colour=IMAGE_RGB) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _sample(image_uri: str | None = None) -> str:
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>ignored</title>
<style>body {{ color: red }}</style></head><body>
<h1>{HEADINGS[0]}</h1>
<p>Claimed guarantee: <b>ε = 8</b>, <i>δ = 1e-05</i>; empirical ε ≤ 2.3 (<code>cp</code>).</p>
<h2>{HEADINGS[1]}</h2>
<table border="1">
<tr><th>Finding</th><th>Claim</th><th>PSNR (dB)</th></tr>
<tr><td>fedsgd:idlg</td><td>no DP claim</td><td>24.1</td></tr>
<tr><td>dp-fedavg:ig</td><td>ε = 8, δ = 1e-05</td><td>11.7</td></tr>
</table>
<ul><li>first item</li><li>second item — with a dash</li></ul>
<h3>{HEADINGS[2]}</h3>
<img src="{image_uri or _png_uri()}" alt="grid">
<p>Top row: ground truth; bottom row: reconstruction.</p>
</body></html>"""


@pytest.fixture(scope="module", autouse=True)
def pdftoppm() -> str:
    exe = shutil.which("pdftoppm")
    if exe is None:
        pytest.fail("pdftoppm (poppler-utils) is not installed; install it with: "
                    f"{pdf_module.INSTALL_HINT}", pytrace=False)
    return exe


@pytest.fixture(scope="module")
def sample_pdf(tmp_path_factory):
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    assert html_to_pdf(_sample(), path, title="Audit ε report") == path
    return path


def test_text_has_headings_table_and_unicode(sample_pdf):
    assert sample_pdf.read_bytes()[:5] == b"%PDF-"
    text = pdf_text(sample_pdf)
    for heading in HEADINGS:
        assert heading in text
    for piece in ("ε = 8", "δ = 1e-05", "ε ≤ 2.3", "fedsgd:idlg", "no DP claim", "24.1",
                  "second item — with a dash", "Page 1 of 1"):
        assert piece in text, piece
    assert "color: red" not in text and "ignored" not in text  # <style>/<title> dropped


def test_metadata_and_embedded_image(sample_pdf):
    from pypdf import PdfReader

    reader = PdfReader(str(sample_pdf))
    assert reader.metadata.title == "Audit ε report"
    assert len(reader.pages) == 1 and len(reader.pages[0].images) == 1
    fonts = reader.pages[0]["/Resources"]["/Font"]
    names = {str(fonts[key].get_object()["/BaseFont"]) for key in fonts}
    assert any("DejaVuSans" in n for n in names), names  # the Unicode TTF, embedded


def test_first_page_png_shows_the_image(sample_pdf, tmp_path):
    out = pdf_first_page_png(sample_pdf, tmp_path / "page1.png", dpi=72)
    assert out == tmp_path / "page1.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as im:
        rgb = im.convert("RGB")
    assert rgb.width in (595, 596) and rgb.height in (841, 842)  # A4 at 72 dpi
    low, high = rgb.convert("L").getextrema()
    assert low < 60 and high == 255  # black text on white
    # the 160 x 80 px image at 72 dpi: 160 x 80 pt of its colour
    hits = int(_image_mask(rgb).sum())
    assert 0.8 * 160 * 80 <= hits <= 1.2 * 160 * 80, hits


def test_wide_image_is_shrunk_to_the_text_width(tmp_path):
    path = html_to_pdf(_sample(_png_uri(size=(2000, 100))), tmp_path / "wide.pdf", title="t")
    with Image.open(pdf_first_page_png(path, tmp_path / "wide.png", dpi=72)) as im:
        rgb = im.convert("RGB")
    columns = np.flatnonzero(_image_mask(rgb).any(axis=0))
    assert columns.size, "image not drawn"
    assert columns[0] > 20 and columns[-1] < rgb.width - 20  # inside the margins


def test_page_numbers_on_every_page(tmp_path):
    html = "<h1>Long</h1>" + "".join(f"<p>paragraph {i}: ε ≤ {i}</p>" for i in range(120))
    path = html_to_pdf(html, tmp_path / "long.pdf", title="long")
    pages = pdf_page_count(path)
    assert pages >= 2
    text = pdf_text(path)
    for n in range(1, pages + 1):
        assert f"Page {n} of {pages}" in text
    assert "paragraph 119: ε ≤ 119" in text


def test_failed_render_writes_nothing(tmp_path):
    """An error mid-render (a corrupt image after the headings) leaves no file at all."""
    bad = _sample("data:image/png;base64," + base64.b64encode(b"not a png").decode())
    target = tmp_path / "bad.pdf"
    with pytest.raises(Exception):
        html_to_pdf(bad, target, title="t")
    assert list(tmp_path.iterdir()) == []


def test_failed_render_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "report.pdf"
    html_to_pdf("<h1>First version</h1>", target, title="t")
    before = target.read_bytes()

    def explode(self, *args, **kwargs):
        raise RuntimeError("disk full while rendering")

    from fpdf import FPDF
    monkeypatch.setattr(FPDF, "output", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        html_to_pdf("<h1>Second version</h1>", target, title="t")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_non_data_image_is_refused(tmp_path):
    Image.new("RGB", (4, 4), "red").save(tmp_path / "local.png")
    with pytest.raises(Exception, match="(?i)access"):
        html_to_pdf(f'<img src="{tmp_path / "local.png"}">', tmp_path / "x.pdf", title="t")
    assert not (tmp_path / "x.pdf").exists()


def test_core_font_fallback_transliterates(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_module, "font_files", lambda: None)
    path = html_to_pdf(_sample(), tmp_path / "core.pdf", title="Audit ε")
    text = pdf_text(path)
    assert HEADINGS[0] in text and "epsilon = 8" in text and "epsilon <= 2.3" in text
    assert "delta = 1e-05" in text and "Page 1 of 1" in text


def test_transliterate():
    assert pdf_module.transliterate("ε ≤ 1, δ ≥ 0, Σ, café, x → y") == \
        "epsilon <= 1, delta >= 0, Sigma, café, x -> y"


def test_pdftoppm_missing_names_the_install_script(sample_pdf, tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_module.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="scripts/install-test-deps.sh"):
        pdf_first_page_png(sample_pdf, tmp_path / "p.png")
