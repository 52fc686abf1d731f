"""The built HTML book in a real browser: math and figures render, the Colab button points at the notebook.

Run by ``make check-html`` (part of ``make test``) after the book is built; skipped, with the reason, where
no Chromium is installed.  Screenshots go to ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHAPTER = "gif"  # a chapter with math, a figure and tables
BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)

pytestmark = [
    pytest.mark.skipif(
        BROWSER is None, reason="no Chromium found: install Debian's 'chromium' to check the rendered book"
    ),
    pytest.mark.skipif(
        not (HTML / "index.html").exists(), reason="no built book in _build/html: run `make book` first"
    ),
]


def _repository_url() -> str:
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", (ROOT / "_config.yml").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _chromium(*args: str) -> str:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={SHOTS / '.profile'}",
        "--virtual-time-budget=20000",
    ]
    assert BROWSER is not None
    out = subprocess.run([BROWSER, *flags, *args], capture_output=True, text=True, timeout=180, check=True)
    return out.stdout


@pytest.mark.parametrize("page", ["book/intro", f"book/{CHAPTER}"])
def test_page_renders_math_and_saves_a_screenshot(server: str, page: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = f"{server}/{page}.html"
    dom = _chromium("--dump-dom", url)
    assert "<mjx-container" in dom, "MathJax did not typeset the page's math"
    shot = SHOTS / f"{page.replace('/', '_')}.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,1400", url)
    assert shot.stat().st_size > 10_000


def test_chapter_shows_its_figure_and_opens_in_colab(server: str) -> None:
    dom = _chromium("--dump-dom", f"{server}/book/{CHAPTER}.html")
    assert re.search(r'<img[^>]+src="[^"]*\.png"', dom), "the chapter's figure is missing"
    path = _repository_url().removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{path}/blob/main/book/{CHAPTER}.ipynb"
    assert colab in dom, f"no Colab launch link to {colab}"
