"""OUT/report.html: built from hand-made output folders (counts, failures, escaping, paging data,
thumbnail reuse), by `scenetext report`, and by every folder run (stand-in models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from scenetext import cli, report
from scenetext.report import THUMB_BOX, TIME_BARS, write_report

HOSTILE_TEXT = '</script><script>document.title="pwned"</script><img src=x onerror="document.title=1">&amp;'
HOSTILE_NAME = '<img src=x onerror=alert(1)>"\'&.jpg'


def page(path: str, texts: list[tuple[str, float]], total_ms: float = 100.0) -> dict:
    """A page in the result JSON form with one box per line."""
    box = [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]]
    lines = [{"polygon": box, "text": text, "confidence": conf,
              "words": [{"polygon": box, "text": text, "confidence": conf}]} for text, conf in texts]
    return {"path": path, "width": 640, "height": 480, "lines": lines,
            "timings_ms": {"decode": 1.0, "detect": 2.0, "recognize": 3.0, "total": total_ms},
            "models": {"detector": "det-x", "recognizer": "rec-y"}, "version": "0.1.0"}


def write_output(out: Path, name: str, texts: list[tuple[str, float]], total_ms: float = 100.0,
                 annotated: bool = True) -> None:
    """What a run writes for one image: OUT/<name>.json and OUT/<name>.annotated.jpg."""
    target = out / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(page(f"photos/{name}", texts, total_ms)))
    if annotated:
        rgb = np.full((480, 640, 3), 200, np.uint8)
        rgb[100:200, 100:300] = (30, 90, 200)
        Image.fromarray(rgb).save(out / f"{name}.annotated.jpg", quality=80)


def write_summary(out: Path, failures: list[tuple[str, str]] = (), processed: int = 3, skipped: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({
        "images": processed + skipped + len(failures), "processed": processed, "skipped": skipped,
        "failed": len(failures), "lines": 0, "seconds": 2.0, "images_per_second": processed / 2.0,
        "failures": [{"path": p, "reason": r} for p, r in failures], "version": "0.1.0"}))


class Page(HTMLParser):
    """The tags, attributes and script blocks of a page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self.text: list[str] = []
        self._in_script: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        else:
            self.text.append(data)

    def card_data(self) -> list[dict]:
        return json.loads(next(text for attrs, text in self.scripts if attrs.get("id") == "card-data"))


def build(out: Path) -> tuple[str, Page]:
    html = write_report(out).read_text(encoding="utf-8")
    return html, Page(html)


# --------------------------------------------------------------------------- the page


def test_summary_counts_failures_and_slowest(tmp_path):
    out = tmp_path / "out"
    write_output(out, "a.jpg", [("OPEN", 0.98), ("CAFE", 0.55)], total_ms=120)
    write_output(out, "sub/b.jpg", [("Main Street", 0.91)], total_ms=480)
    write_output(out, "c.jpg", [], total_ms=60, annotated=False)
    write_summary(out, failures=[("photos/zero.jpg", "empty file"), ("photos/notes.png", "not an image")])
    html, parsed = build(out)
    text = " ".join(parsed.text)

    assert "images with outputs 3" in text and "lines 3" in text and "failures 2" in text
    assert "1.50 (3 read in 2.0 s; 0 skipped" in text
    assert "detector det-x, recogniser rec-y" in text
    assert "photos/zero.jpg empty file" in text and "photos/notes.png not an image" in text
    slowest = text[text.index("Slowest photos"):]
    assert slowest.index("sub/b.jpg") < slowest.index("a.jpg") < slowest.index("c.jpg")
    cards = parsed.card_data()
    assert [c["n"] for c in cards] == ["a.jpg", "c.jpg", "sub/b.jpg"]
    assert cards[0]["l"] == [["OPEN", 0.98], ["CAFE", 0.55]] and cards[0]["ms"] == 120
    assert cards[2]["a"] == "./sub/b.jpg.annotated.jpg" and "t" not in cards[1] and "a" not in cards[1]
    thumb = out / cards[0]["t"]
    assert thumb.parent == out / ".report" / "thumbs"
    with Image.open(thumb) as img:
        assert img.format == "JPEG" and img.size[0] <= THUMB_BOX[0] and img.size[1] <= THUMB_BOX[1]
        assert (cards[0]["w"], cards[0]["h"]) == img.size
    # two inline SVG charts, 20 histogram bins; one bar a photo
    svgs = [attrs for tag, attrs in parsed.tags if tag == "svg"]
    assert len(svgs) == 2 and sum(1 for tag, _ in parsed.tags if tag == "rect") == 20 + 3


def test_page_is_self_contained(tmp_path):
    out = tmp_path / "out"
    write_output(out, "a.jpg", [("x", 0.5)])
    html, parsed = build(out)
    for tag, attrs in parsed.tags:
        for key, value in attrs.items():
            if key in ("src", "href") and value:
                assert not value.startswith(("http:", "https:", "//")), (tag, key, value)
    assert not any(tag in ("link", "iframe", "object", "embed") for tag, _ in parsed.tags)
    assert [attrs.get("type") for attrs, _ in parsed.scripts] == [None, "application/json", None]
    assert not any("src" in attrs for attrs, _ in parsed.scripts)
    policy = next(attrs["content"] for tag, attrs in parsed.tags if attrs.get("http-equiv") ==
                  "Content-Security-Policy")
    assert "default-src 'none'" in policy and policy.count("'sha256-") == 2 and "unsafe-inline'; img" in policy
    assert "innerHTML" not in html and "document.write" not in html


def test_text_and_file_names_are_escaped(tmp_path):
    out = tmp_path / "out"
    write_output(out, HOSTILE_NAME, [(HOSTILE_TEXT, 0.9)])
    write_summary(out, failures=[(f"photos/{HOSTILE_NAME}", f"not an image {HOSTILE_TEXT}")])
    html, parsed = build(out)

    # only the page's own elements: no <img>, no second <script>, no event handler attribute
    assert [tag for tag, _ in parsed.tags].count("script") == 3
    assert "img" not in [tag for tag, _ in parsed.tags]
    assert not any(key.startswith("on") for _, attrs in parsed.tags for key in attrs)
    assert "pwned" not in "".join(attrs.get("content", "") for _, attrs in parsed.tags)
    # the data block holds the strings unchanged, with no markup in its source
    data_source = next(text for attrs, text in parsed.scripts if attrs.get("id") == "card-data")
    assert "<" not in data_source and ">" not in data_source and "&" not in data_source
    card = parsed.card_data()[0]
    assert card["n"] == HOSTILE_NAME and card["l"][0][0] == HOSTILE_TEXT
    assert card["a"].startswith("./%3Cimg%20src%3Dx") and "<" not in card["a"]
    # and the failure table and slowest table show them as text
    text = "".join(parsed.text)
    assert f"photos/{HOSTILE_NAME}" in text and HOSTILE_TEXT in text and HOSTILE_NAME in text


def test_unreadable_outputs_are_listed_not_fatal(tmp_path):
    out = tmp_path / "out"
    write_output(out, "good.jpg", [("ok", 0.9)])
    (out / "half.jpg.json").write_text('{"half": ')
    (out / "other.json").write_text('{"not": "a page"}')
    os.mkfifo(out / "fifo.jpg.json")  # refused without blocking on it
    (out / "fake.jpg.annotated.jpg").write_bytes(b"not a jpeg")
    (out / "fake.jpg.json").write_text(json.dumps(page("photos/fake.jpg", [("y", 0.4)])))
    html, parsed = build(out)
    assert [c["n"] for c in parsed.card_data()] == ["fake.jpg", "good.jpg"]
    assert "t" not in parsed.card_data()[0]  # an annotated copy that does not decode has no thumbnail
    text = " ".join(parsed.text)
    assert "Output files the report could not read (3)" in text
    assert "fifo.jpg.json OSError" in text and "not a regular file" in text
    assert "half.jpg.json JSONDecodeError" in text and "other.json ValueError: not a scenetext page" in text


def test_jsonl_records_find_their_annotated_copies(tmp_path):
    out = tmp_path / "out"
    records = [page("/data/photos/a.jpg", [("one", 0.9)]), page("/data/photos/sub/b.jpg", [("two", 0.8)]),
               page("/elsewhere/c.jpg", [("three", 0.7)]), {"name": "d/d.jpg", **page("/x/d.jpg", [("four", 0.6)])}]
    out.mkdir()
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + "{broken\n")
    for name in ("a.jpg", "sub/b.jpg"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), "white").save(out / f"{name}.annotated.jpg")
    _, parsed = build(out)
    cards = {c["n"]: c for c in parsed.card_data()}
    assert set(cards) == {"a.jpg", "sub/b.jpg", "/elsewhere/c.jpg", "d/d.jpg"}
    assert cards["sub/b.jpg"]["a"] == "./sub/b.jpg.annotated.jpg" and "t" in cards["sub/b.jpg"]
    assert "a" not in cards["/elsewhere/c.jpg"]
    assert "results.jsonl:5" in " ".join(parsed.text)


def test_2500_images_page_data_and_thumbnails_made_once(tmp_path):
    out = tmp_path / "out"
    for i in range(2500):
        write_output(out, f"p{i:04d}.jpg", [(f"word{i}", (i % 100) / 100)], total_ms=50 + i % 97,
                     annotated=i < 12)
    write_summary(out, processed=2500)
    html, parsed = build(out)
    cards = parsed.card_data()
    assert len(cards) == 2500 and sum("t" in c for c in cards) == 12
    time_rects = sum(1 for tag, _ in parsed.tags if tag == "rect") - 20
    assert time_rects <= TIME_BARS
    thumbs = {p.name: p.stat().st_mtime_ns for p in (out / ".report" / "thumbs").iterdir()}
    assert len(thumbs) == 12

    # a rebuild reuses them; a changed annotated copy gets a new one, the old one goes
    Image.new("RGB", (64, 48), "red").save(out / "p0003.jpg.annotated.jpg")
    os.utime(out / "p0003.jpg.annotated.jpg", ns=(1, 1))
    _, parsed = build(out)
    again = {p.name: p.stat().st_mtime_ns for p in (out / ".report" / "thumbs").iterdir()}
    assert len(again) == 12 and len(set(again) & set(thumbs)) == 11
    assert all(again[name] == thumbs[name] for name in set(again) & set(thumbs))


def test_import_is_light():
    code = "import sys, scenetext.report; print(sorted({'PIL', 'numpy', 'torch', 'cv2'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- commands


def test_report_command(tmp_path):
    out = tmp_path / "out"
    write_output(out, "a.jpg", [("x", 0.5)])
    result = CliRunner().invoke(cli.main, ["report", str(out)])
    assert result.exit_code == 0 and "report.html" in result.stdout
    assert (out / "report.html").is_file()

    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli.main, ["report", str(empty)])
    assert result.exit_code == 1 and "no scenetext outputs" in result.stderr
    assert not (empty / "report.html").exists()


@pytest.fixture
def fake_models(monkeypatch, recognizer):
    from helpers import BlobDetector
    from scenetext.reader import Reader

    monkeypatch.setattr(cli, "make_reader", lambda **options: Reader(BlobDetector(), recognizer, min_confidence=0))


def photos(folder: Path, names: list[str]) -> None:
    from helpers import dark_boxes_image

    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        image = dark_boxes_image()
        image[110 + i, :] = 200
        Image.fromarray(image).save(folder / name)


def test_folder_run_writes_and_resume_updates_the_report(fake_models, tmp_path):
    folder, out = tmp_path / "photos", tmp_path / "out"
    photos(folder, ["a.png", "b.png"])
    (folder / "broken.jpg").write_bytes(b"")
    result = CliRunner().invoke(cli.main, ["run", str(folder), "-o", str(out)])
    assert result.exit_code == 1, result.output
    parsed = Page((out / "report.html").read_text(encoding="utf-8"))
    assert [c["n"] for c in parsed.card_data()] == ["a.png", "b.png"]
    assert "broken.jpg empty file" in " ".join(parsed.text)
    assert f"report: {out / 'report.html'}" in result.stdout

    photos(folder, ["a.png", "b.png", "c.png"])
    (folder / "broken.jpg").unlink()
    result = CliRunner().invoke(cli.main, ["run", str(folder), "-o", str(out), "--skip-existing"])
    assert result.exit_code == 0, result.output
    parsed = Page((out / "report.html").read_text(encoding="utf-8"))
    assert [c["n"] for c in parsed.card_data()] == ["a.png", "b.png", "c.png"]
    text = " ".join(parsed.text)
    assert "failures 0" in text and "1 read in" in text and "2 skipped" in text


def test_a_failing_report_keeps_the_run(fake_models, monkeypatch, tmp_path):
    def broken(out):
        raise OSError(f"{out}/report.html: No space left on device\nsecond line")

    monkeypatch.setattr(report, "write_report", broken)
    folder, out = tmp_path / "photos", tmp_path / "out"
    photos(folder, ["a.png", "b.png"])
    result = CliRunner().invoke(cli.main, ["run", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning: cannot write") and "No space left" in warnings[0]
    assert (out / "summary.json").is_file() and (out / "a.png.json").is_file() and (out / "b.png.json").is_file()
    assert not (out / "report.html").exists()
