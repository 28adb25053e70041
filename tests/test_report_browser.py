"""OUT/report.html in a real headless browser (Debian's chromium, installed by `make browser`):
the cards render a page at a time, the filter and paging work, no script error occurs and
hostile texts stay text."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html import unescape
from pathlib import Path

import pytest

from test_report import HOSTILE_NAME, HOSTILE_TEXT, Page, write_output, write_summary
from scenetext.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
PAGE_SIZE = 48  # cards per page, as in scenetext/resources/report.js


@pytest.fixture(scope="module")
def browser() -> str:
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        pytest.skip("no chromium to open the report in: `make browser` installs Debian's chromium (needs root "
                    "and apt-get)")
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report of 2,500 images (12 with annotated copies), one of them with a hostile name and text."""
    out = tmp_path_factory.mktemp("browser") / "out"
    for i in range(2500):
        write_output(out, f"p{i:04d}.jpg", [(f"word{i}", 0.5 + (i % 50) / 100)], total_ms=40 + i % 83,
                     annotated=i < 12)
    write_output(out, HOSTILE_NAME, [(HOSTILE_TEXT, 0.9)])
    write_summary(out, failures=[("photos/zero.jpg", "empty file")], processed=2501)
    return write_report(out)


def open_page(browser: str, url: str) -> tuple[str, str]:
    """``(DOM after the scripts ran, browser log)`` of ``url``."""
    with tempfile.TemporaryDirectory(prefix="scenetext-chromium-") as profile:
        result = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def script_errors(dom: str, log: str) -> list[str]:
    box = re.search(r'<p id="script-errors"[^>]*>(.*?)</p>', dom, re.S)
    shown = [unescape(box.group(1))] if box and box.group(1).strip() else []
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line
               or "Content Security Policy" in line]
    return shown + console


def cards(dom: str) -> list[str]:
    return re.findall(r'<article class="card">(.*?)</article>', dom, re.S)


def attribute(dom: str, name: str) -> str:
    return re.search(rf'<div id="cards"[^>]*\s{name}="([^"]*)"', dom).group(1)


def test_cards_render_without_script_errors(browser, report):
    dom, log = open_page(browser, report.as_uri())
    assert script_errors(dom, log) == []
    shown = cards(dom)
    assert len(shown) == PAGE_SIZE
    assert (attribute(dom, "data-page"), attribute(dom, "data-pages")) == ("1", str(-(-2501 // PAGE_SIZE)))
    first = next(card for card in shown if ">p0000.jpg<" in card)
    assert "word0" in first and 'loading="lazy"' in first and ".report/thumbs/" in first
    assert "2501 images" in dom


def test_paging_and_filter_through_the_address(browser, report):
    dom, log = open_page(browser, report.as_uri() + "#page=53")  # the last page
    assert script_errors(dom, log) == []
    shown = cards(dom)
    assert attribute(dom, "data-page") == "53" and len(shown) == 2501 - 52 * PAGE_SIZE == 5
    assert ">p2499.jpg<" in shown[-1] and "no annotated image" in shown[-1]

    dom, log = open_page(browser, report.as_uri() + "#q=WORD123")  # case-insensitive, in line texts
    assert script_errors(dom, log) == []
    names = re.findall(r'<h3 class="name"[^>]*>(.*?)</h3>', dom)
    assert names == [f"p{i:04d}.jpg" for i in (123, 1230, 1231, 1232, 1233, 1234, 1235, 1236, 1237, 1238, 1239)]
    assert attribute(dom, "data-matches") == "11" and "11 of 2501 images match" in dom


def test_hostile_text_stays_text_in_the_browser(browser, report):
    dom, log = open_page(browser, report.as_uri() + "#q=onerror")
    assert script_errors(dom, log) == []
    (card,) = cards(dom)
    text = unescape(re.sub(r"<[^>]+>", "", card))
    assert HOSTILE_TEXT in text and HOSTILE_NAME in text
    parsed = Page(dom)  # the DOM after the scripts ran: the page's own elements only
    assert [tag for tag, _ in parsed.tags].count("script") == 3
    assert not any(key.startswith("on") for _, attrs in parsed.tags for key in attrs)
    assert [attrs["src"] for tag, attrs in parsed.tags if tag == "img"] == [
        src for src in re.findall(r'src="([^"]+)"', card)] and "x" not in [attrs.get("src") for _, attrs in parsed.tags]
    assert re.search(r"<title>(.*?)</title>", dom).group(1).startswith("scenetext report")


def test_a_script_error_is_seen(browser, report, tmp_path):
    """The checks above can fail: a card without lines makes the script throw, and it shows."""
    broken = tmp_path / "report.html"
    html = report.read_text(encoding="utf-8")
    broken.write_text(html.replace('"l":[', '"x":[', 1), encoding="utf-8")
    dom, log = open_page(browser, broken.as_uri())
    errors = script_errors(dom, log)
    assert errors and "The page script failed: " in errors[0] and "TypeError" in errors[0]
    assert cards(dom) == []
