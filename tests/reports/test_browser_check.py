"""The audit report's HTML page in real headless Chromium (reports.browser_check).

Chromium is required, never skipped: without it the tests fail and say how to install it
(``bash scripts/install-test-deps.sh``, which CI runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from audit.cli.main import main
from reports import browser_check
from reports.browser_check import check_html_in_chromium, find_chromium

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# the report's own Content-Security-Policy (reports/templates/report.html.j2)
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
ONE_PIXEL_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
                 "2mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module", autouse=True)
def chromium() -> str:
    try:
        return find_chromium()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    """report.html of a tiny real audit (gradient inversion on digits, a DP claim)."""
    out = tmp_path_factory.mktemp("audit")
    argv = ["audit", "--dataset", "digits", "--model", "convnet", "--model-param", "width=4",
            "--defense", "dp-fedavg", "--defense-param", "noise_multiplier=0.1",
            "--num-targets", "1", "--attack-param", "iterations=2", "--no-lpips",
            "--no-progress", "--device", "cpu", "--seed", "0", "--out", str(out)]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    return out / "report.html"


def _page(tmp_path: Path, body: str, *, csp: str | None = None) -> Path:
    meta = f'<meta http-equiv="Content-Security-Policy" content="{csp}">' if csp else ""
    page = tmp_path / "page.html"
    page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8">{meta}<title>t</title>'
                    f"</head><body>{body}</body></html>", encoding="utf-8")
    return page


def test_audit_report_loads_cleanly_with_screenshot(report_html, tmp_path):
    html = report_html.read_text(encoding="utf-8")
    assert REPORT_CSP in html and 'src="data:image/png;base64,' in html  # what is checked
    shot = tmp_path / "report.png"
    check = check_html_in_chromium(report_html, screenshot=shot, timeout=60)
    assert check.ok, check.summary()
    assert check.images_total >= 1 and check.images_loaded == check.images_total
    assert check.images_failed == [] and check.console_errors == [] and check.page_errors == []
    assert check.screenshot == shot and shot.read_bytes()[:8] == PNG_MAGIC
    with Image.open(shot) as im:
        width, height = im.size
        gray = im.convert("L")
        low, high = gray.getextrema()
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert width >= browser_check.VIEWPORT[0] and height > browser_check.VIEWPORT[1]  # full page
    assert high - low > 200 and len(colours) > 50  # text and an image, not a blank page


def test_broken_image_console_error_and_exception_are_reported(tmp_path):
    page = _page(tmp_path, (
        "<h1>broken</h1>"
        f'<img src="{ONE_PIXEL_PNG}" alt="fine">'
        '<img src="does-not-exist.png" alt="missing grid">'
        '<script>console.log("not an error"); console.error("bad thing", 42);'
        "undefinedFunction();</script>"))
    check = check_html_in_chromium(page, timeout=60)
    assert not check.ok
    assert (check.images_total, check.images_loaded) == (2, 1)
    assert len(check.images_failed) == 1 and "missing grid" in check.images_failed[0]
    assert "does-not-exist.png" in check.images_failed[0]
    assert "console.error: bad thing 42" in check.console_errors
    assert not any("not an error" in e for e in check.console_errors)
    assert any("ERR_FILE_NOT_FOUND" in e for e in check.console_errors)
    assert any("undefinedFunction" in e for e in check.page_errors)
    assert "missing grid" in check.summary()


def test_report_csp_blocks_non_data_images_and_scripts(tmp_path):
    """Under the report's CSP a data: image loads; a file image and a script are refused."""
    Image.new("RGB", (4, 4), "red").save(tmp_path / "local.png")
    page = _page(tmp_path, f'<img src="{ONE_PIXEL_PNG}" alt="inline">'
                           '<img src="local.png" alt="file">'
                           '<script>console.error("scripts must not run")</script>',
                 csp=REPORT_CSP)
    check = check_html_in_chromium(page, timeout=60)
    assert (check.images_total, check.images_loaded) == (2, 1)
    assert "alt='file'" in check.images_failed[0]
    assert not any("scripts must not run" in e for e in check.console_errors)
    csp_errors = [e for e in check.console_errors if "Content Security Policy" in e]
    assert len(csp_errors) >= 2, check.console_errors  # the image and the inline script


def test_missing_chromium_names_the_install_script(tmp_path, monkeypatch):
    page = _page(tmp_path, "<p>x</p>")
    monkeypatch.setattr(browser_check.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="scripts/install-test-deps.sh"):
        check_html_in_chromium(page)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        check_html_in_chromium(tmp_path / "nope.html")
