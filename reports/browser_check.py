"""Open an HTML file in headless Chromium and report what a reader would see go wrong.

:func:`check_html_in_chromium` starts Debian's ``chromium`` headless with a throw-away
profile, drives it over the DevTools protocol (pip package ``websocket-client``), loads
the file, and returns a :class:`BrowserCheck`: how many images (``<img>``, SVG ``<image>``)
loaded and which did not, the console errors (``console.error``/``console.assert``, and
the browser's own error log: a failed load, a Content-Security-Policy violation) and the
uncaught page exceptions, and optionally a full-page PNG screenshot. Chromium is killed
and its profile deleted on every exit path.

Install Chromium with ``bash scripts/install-test-deps.sh``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = "bash scripts/install-test-deps.sh"
#: viewport of the page (CSS pixels); the screenshot is as wide and as tall as the page
VIEWPORT = (1280, 900)
#: the tallest screenshot taken (CSS pixels); a longer page is cut there
MAX_SCREENSHOT_HEIGHT = 16000

_DEVTOOLS_PREFIX = "DevTools listening on "

# Every <img> (loaded: complete with a natural width) and every SVG <image> (probed by
# loading its href into a detached Image), plus the number of inline <svg> elements that
# rendered with no size.
_IMAGES_JS = r"""
(async () => {
  const short = (s) => {
    s = s || '';
    const keep = s.startsWith('data:') ? 48 : 300;  // a data: URI by its type, a URL whole
    return s.length > keep ? s.slice(0, keep) + '...' : s;
  };
  const out = [];
  for (const img of Array.from(document.images)) {
    const src = img.currentSrc || img.getAttribute('src') || '';
    out.push({kind: 'img', src: short(src), alt: img.alt || '',
              ok: img.complete && img.naturalWidth > 0});
  }
  const probe = (href) => new Promise((resolve) => {
    const im = new Image();
    const timer = setTimeout(() => resolve(false), 5000);
    im.onload = () => { clearTimeout(timer); resolve(im.naturalWidth > 0); };
    im.onerror = () => { clearTimeout(timer); resolve(false); };
    im.src = href;
  });
  for (const el of Array.from(document.querySelectorAll('svg image'))) {
    const href = el.getAttribute('href') || el.getAttribute('xlink:href') || '';
    const ok = href ? await probe(new URL(href, document.baseURI).href) : false;
    out.push({kind: 'svg image', src: short(href), alt: '', ok: ok});
  }
  let svgEmpty = 0;
  for (const svg of Array.from(document.querySelectorAll('svg'))) {
    if (svg.parentElement && svg.parentElement.closest('svg')) continue;
    const r = svg.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) svgEmpty += 1;
  }
  return {images: out, svgs: document.querySelectorAll('svg').length, svgEmpty: svgEmpty};
})()
"""


@dataclass
class BrowserCheck:
    """What headless Chromium saw when it loaded a page.

    Attributes:
        url: The ``file://`` URL loaded.
        images_total: ``<img>`` and SVG ``<image>`` elements on the page.
        images_loaded: How many of them loaded (decoded with a non-zero natural width).
        images_failed: One entry per image that did not load: its ``src`` (a URL whole up
            to 300 characters, a ``data:`` URI by its first 48) and ``alt`` text.
        console_errors: ``console.error``/``console.assert`` messages and the browser's
            error log (failed loads, Content-Security-Policy violations), in order.
        page_errors: Uncaught exceptions and unhandled rejections.
        svg_total: Inline ``<svg>`` elements; ``svg_empty``: outermost ones with no size.
        screenshot: The PNG written, or None.
        load_s: Seconds from navigation to the load event.
    """

    url: str
    images_total: int = 0
    images_loaded: int = 0
    images_failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    svg_total: int = 0
    svg_empty: int = 0
    screenshot: Path | None = None
    load_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every image loaded and nothing was logged as an error."""
        return (not self.images_failed and not self.console_errors and not self.page_errors
                and self.svg_empty == 0)

    def summary(self) -> str:
        """One paragraph saying what failed (for an assertion message)."""
        parts = [f"{self.images_loaded}/{self.images_total} images loaded"]
        if self.images_failed:
            parts.append("failed images: " + "; ".join(self.images_failed))
        if self.console_errors:
            parts.append("console errors: " + " | ".join(self.console_errors))
        if self.page_errors:
            parts.append("page errors: " + " | ".join(self.page_errors))
        if self.svg_empty:
            parts.append(f"{self.svg_empty} of {self.svg_total} inline SVGs have no size")
        return f"{self.url}: " + "; ".join(parts)


def find_chromium() -> str:
    """The path of Debian's ``chromium``; RuntimeError naming the install step if absent."""
    exe = shutil.which("chromium")
    if exe is None:
        raise RuntimeError("chromium is not installed (Debian package 'chromium'); "
                           f"install it with: {INSTALL_HINT}")
    return exe


class _StderrReader(threading.Thread):
    """Drains Chromium's stderr (so it never blocks) and finds the DevTools URL in it."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []
        self.ws_url: str | None = None
        self.found = threading.Event()

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if len(self.lines) < 200:
                self.lines.append(line)
            if self.ws_url is None and line.startswith(_DEVTOOLS_PREFIX):
                self.ws_url = line[len(_DEVTOOLS_PREFIX):].strip()
                self.found.set()
        self.found.set()  # EOF: Chromium exited


class _DevTools:
    """A minimal DevTools client on one websocket, with flattened target sessions."""

    def __init__(self, ws_url: str, deadline: float) -> None:
        try:
            import websocket
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise RuntimeError("the pip package websocket-client is not installed") from exc
        self.deadline = deadline
        # suppress_origin: Chromium refuses DevTools websockets that send an Origin header
        self.ws = websocket.create_connection(ws_url, timeout=self._left(),
                                              suppress_origin=True,
                                              enable_multithread=False)
        self.next_id = 0
        self.events: list[dict] = []

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("headless chromium did not answer in time")
        return left

    def _recv(self) -> dict:
        self.ws.settimeout(self._left())
        return json.loads(self.ws.recv())

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            reply = self._recv()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict:
        for i, event in enumerate(self.events):
            if event["method"] == method and event.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            event = self._recv()
            if event.get("method") == method and event.get("sessionId") == session:
                return event
            if "method" in event:
                self.events.append(event)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing a dead socket
            pass


def _remote_object_text(obj: dict) -> str:
    if "value" in obj:
        value = obj["value"]
        return value if isinstance(value, str) else json.dumps(value)
    return str(obj.get("description") or obj.get("unserializableValue") or obj.get("type", ""))


def _collect_messages(events: list[dict], session: str, check: BrowserCheck) -> None:
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(_remote_object_text(a) for a in params.get("args", []))
            check.console_errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exc = details.get("exception") or {}
            text = exc.get("description") or details.get("text") or "exception"
            check.page_errors.append(str(text).splitlines()[0])
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                where = f" ({entry['url'][:80]})" if entry.get("url") else ""
                check.console_errors.append(f"{entry.get('source', 'log')}: "
                                            f"{entry.get('text', '')}{where}")


def _stop(proc: subprocess.Popen) -> None:
    """Kill Chromium and the processes it started (its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:  # helpers (renderer, zygote) may outlive the browser process
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
        pass


def check_html_in_chromium(path: str | os.PathLike, *, screenshot: Path | None = None,
                           timeout: float = 60) -> BrowserCheck:
    """Load an HTML file in headless Chromium and report broken images and errors.

    Args:
        path: The HTML file.
        screenshot: Where to write a PNG of the whole page (at most
            :data:`MAX_SCREENSHOT_HEIGHT` CSS pixels tall), or None for none.
        timeout: Seconds for everything (start, load, checks, screenshot).

    Returns:
        A :class:`BrowserCheck`; its :attr:`~BrowserCheck.ok` is True when the page is clean.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        RuntimeError: If ``chromium`` is not installed (the message names the install
            step), or it fails to start or to answer.
        TimeoutError: If it does not finish within ``timeout``.
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"no such HTML file: {file}")
    exe = find_chromium()
    deadline = time.monotonic() + timeout
    profile = tempfile.mkdtemp(prefix="fedaudit-chromium-")
    proc: subprocess.Popen | None = None
    reader: _StderrReader | None = None
    client: _DevTools | None = None
    try:
        proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-port=0", f"--user-data-dir={profile}",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-sync", "--mute-audio",
             "--hide-scrollbars", "--disable-dev-shm-usage",
             f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        reader = _StderrReader(proc.stderr)
        reader.start()
        if not reader.found.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"chromium printed no DevTools URL within {timeout} s")
        if reader.ws_url is None:
            raise RuntimeError("chromium exited before it was ready (exit code "
                               f"{proc.poll()}): " + " | ".join(reader.lines[-10:]))
        client = _DevTools(reader.ws_url, deadline)
        target = client.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = client.send("Target.attachToTarget",
                              {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            client.send(f"{domain}.enable", session=session)
        client.send("Emulation.setDeviceMetricsOverride",
                    {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1,
                     "mobile": False}, session=session)
        check = BrowserCheck(url=file.as_uri())
        started = time.monotonic()
        nav = client.send("Page.navigate", {"url": check.url}, session=session)
        if nav.get("errorText"):
            raise RuntimeError(f"chromium could not open {check.url}: {nav['errorText']}")
        client.wait_event("Page.loadEventFired", session)
        check.load_s = time.monotonic() - started
        result = client.send("Runtime.evaluate",
                             {"expression": _IMAGES_JS, "awaitPromise": True,
                              "returnByValue": True}, session=session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"image check script failed: {result['exceptionDetails']}")
        found = result["result"]["value"]
        images = found["images"]
        check.images_total = len(images)
        check.images_loaded = sum(1 for i in images if i["ok"])
        check.images_failed = [f"{i['kind']} src={i['src']!r} alt={i['alt']!r}"
                               for i in images if not i["ok"]]
        check.svg_total, check.svg_empty = found["svgs"], found["svgEmpty"]
        if screenshot is not None:
            metrics = client.send("Page.getLayoutMetrics", session=session)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            width = max(VIEWPORT[0], int(size["width"] + 0.999))
            height = min(MAX_SCREENSHOT_HEIGHT, max(1, int(size["height"] + 0.999)))
            shot = client.send("Page.captureScreenshot",
                               {"format": "png", "captureBeyondViewport": True,
                                "clip": {"x": 0, "y": 0, "width": width, "height": height,
                                         "scale": 1}}, session=session)
            out = Path(screenshot)
            out.write_bytes(base64.b64decode(shot["data"]))
            check.screenshot = out
        # a last round trip so every event sent before it has arrived
        client.send("Runtime.evaluate", {"expression": "0"}, session=session)
        _collect_messages(client.events, session, check)
        return check
    finally:
        if client is not None:
            client.close()
        if proc is not None:
            _stop(proc)
            if reader is not None:
                reader.join(timeout=5)  # EOF once Chromium and its helpers are gone
            if proc.stderr is not None:
                proc.stderr.close()
        shutil.rmtree(profile, ignore_errors=True)
