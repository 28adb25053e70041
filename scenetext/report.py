"""The report of a batch: one self-contained HTML page, ``OUT/report.html``, built from what a
run left on disk in its output folder.

    >>> write_report(Path("out"))          # reads out/*.json or out/results.jsonl, out/summary.json
    PosixPath('out/report.html')

The page shows the run's summary, a histogram of line confidences and a plot of time per photo
(inline SVG), one card per image (thumbnail and lines, filterable by text, shown a page at a
time), the failures with their reasons and the slowest photos. It needs no network: styles and
scripts are inline, the card data is one inline JSON block, and the thumbnails are small JPEGs
under ``OUT/.report/thumbs/`` (made once per annotated image and reused while it is unchanged).

Every text that comes from an image or a file name is escaped: HTML-escaped in the page, and
JSON-encoded with ``<``, ``>`` and ``&`` written as ``\\u`` escapes in the data block, which the
script turns into DOM text nodes only. A Content-Security-Policy lets only the page's own two
scripts run (by their hashes) and forbids every network request.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import math
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Iterable, Iterator
from urllib.parse import quote

__all__ = ["BatchReport", "FailureRecord", "ImageRecord", "LineRecord", "RunFigures", "collect", "render_page",
           "write_report"]

REPORT_NAME = "report.html"
THUMBS_DIR = ".report/thumbs"
SUMMARY_NAME = "summary.json"
JSONL_NAME = "results.jsonl"
ANNOTATED_SUFFIX = ".annotated.jpg"
#: Thumbnails fit in this box (pixels) and are JPEGs of this quality.
THUMB_BOX = (360, 240)
THUMB_QUALITY = 80
#: Output files larger than this are not read (a page's JSON is a few kB to a few hundred kB).
MAX_RECORD_BYTES = 32 << 20
#: Annotated copies larger than this get no thumbnail.
MAX_IMAGE_BYTES = 256 << 20
#: How many photos the "slowest photos" table lists; bars at most in the time plot; histogram bins.
SLOWEST = 10
TIME_BARS = 400
CONFIDENCE_BINS = 20
_THREADS = 4


# --------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class LineRecord:
    """One line of an image as the report shows it."""

    text: str
    confidence: float


@dataclass(frozen=True)
class ImageRecord:
    """One image's outputs: ``name`` is its output name (``OUT/<name>.json``), ``source`` the input path."""

    name: str
    source: str
    lines: tuple[LineRecord, ...]
    total_ms: float | None
    width: int
    height: int
    models: tuple[str, str] | None
    annotated: Path | None = None


@dataclass(frozen=True)
class FailureRecord:
    """An input that failed (from ``summary.json``), or an output file the report could not read."""

    path: str
    reason: str


@dataclass(frozen=True)
class RunFigures:
    """The figures of the last run, from ``OUT/summary.json``."""

    images: int
    processed: int
    skipped: int
    lines: int
    seconds: float
    images_per_second: float
    version: str


@dataclass
class BatchReport:
    """Everything the page shows, as read from an output folder."""

    out: Path
    run: RunFigures | None
    images: list[ImageRecord] = field(default_factory=list)
    failures: list[FailureRecord] = field(default_factory=list)
    unreadable: list[FailureRecord] = field(default_factory=list)

    @property
    def line_count(self) -> int:
        return sum(len(image.lines) for image in self.images)

    def slowest(self, n: int = SLOWEST) -> list[ImageRecord]:
        """The ``n`` images that took longest, slowest first."""
        timed = [image for image in self.images if image.total_ms is not None]
        return sorted(timed, key=lambda image: -image.total_ms)[:n]

    def model_counts(self) -> dict[tuple[str, str], int]:
        """How many images each (detector, recogniser) pair read."""
        counts: dict[tuple[str, str], int] = {}
        for image in self.images:
            if image.models:
                counts[image.models] = counts.get(image.models, 0) + 1
        return counts


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail file under ``OUT/.report/thumbs`` and its size."""

    path: Path
    width: int
    height: int


# --------------------------------------------------------------------------------- reading OUT


def write_report(out: str | os.PathLike) -> Path:
    """Build ``OUT/report.html`` (and its thumbnails) from the outputs in ``out``; return its path.

    Raises:
        FileNotFoundError: ``out`` is not a folder, or holds neither ``summary.json`` nor any image output.
        OSError: the page or a thumbnail folder cannot be written.
    """
    from .imageio import atomic_write_bytes

    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: not a folder")
    report = collect(out)
    if report.run is None and not report.images and not report.failures:
        raise FileNotFoundError(f"{out}: no scenetext outputs (summary.json, <name>.json or results.jsonl)")
    thumbs = make_thumbnails(report.images, out / THUMBS_DIR)
    page = render_page(report, thumbs, built=time.strftime("%Y-%m-%d %H:%M:%S"))
    target = out / REPORT_NAME
    atomic_write_bytes(target, page.encode("utf-8", "replace"))
    return target


def collect(out: Path) -> BatchReport:
    """Read the run summary, the per-image JSON files and ``results.jsonl`` under ``out``."""
    run, failures, unreadable = read_summary(out)
    annotated = annotated_images(out)
    images: list[ImageRecord] = []
    seen: set[str] = set()
    for item in [*json_outputs(out, annotated), *jsonl_outputs(out, annotated)]:
        if isinstance(item, FailureRecord):
            unreadable.append(item)
        elif item.source not in seen:
            seen.add(item.source)
            images.append(item)
    images.sort(key=lambda image: image.name)
    return BatchReport(out, run, images, failures, unreadable)


@contextlib.contextmanager
def open_regular_file(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading, once the open file is known to be a regular file (it is opened
    without blocking, so a FIFO or device is refused, never read).

    Raises:
        OSError: it cannot be opened or is not a regular file (one-line message).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise OSError(f"{path}: not a regular file")
        yield stream


def read_regular_file(path: Path, limit: int = MAX_RECORD_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`open_regular_file`), at most ``limit`` of them.

    Raises:
        OSError: it cannot be opened, is not a regular file or is larger than ``limit`` bytes.
    """
    with open_regular_file(path) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path}: larger than {limit >> 20} MB")
    return data


def read_summary(out: Path) -> tuple[RunFigures | None, list[FailureRecord], list[FailureRecord]]:
    """``(figures, failures, unreadable)`` from ``OUT/summary.json`` (``None`` and no failures when absent)."""
    path = out / SUMMARY_NAME
    if not path.exists():
        return None, [], []
    try:
        doc = json.loads(read_regular_file(path))
        figures = RunFigures(
            images=_int(doc["images"]), processed=_int(doc["processed"]), skipped=_int(doc["skipped"]),
            lines=_int(doc["lines"]), seconds=_number(doc["seconds"]),
            images_per_second=_number(doc["images_per_second"]), version=str(doc.get("version", "")))
        failures = [FailureRecord(_str(f["path"]), _str(f["reason"])) for f in doc.get("failures", [])]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, [], [FailureRecord(str(path), _why(err))]
    return figures, failures, []


def annotated_images(out: Path) -> dict[str, Path]:
    """``{name: OUT/<name>.annotated.jpg}`` for every annotated copy under ``out``."""
    return {rel[: -len(ANNOTATED_SUFFIX)]: path for rel, path in _output_files(out, ANNOTATED_SUFFIX)}


def json_outputs(out: Path, annotated: dict[str, Path]) -> Iterator[ImageRecord | FailureRecord]:
    """A record for each ``OUT/<name>.json`` (a failure record for each that does not parse as a page)."""
    for rel, path in _output_files(out, ".json"):
        if rel == SUMMARY_NAME:
            continue
        name = rel[: -len(".json")]
        try:
            yield page_record(json.loads(read_regular_file(path)), name, annotated.get(name))
        except (OSError, ValueError, KeyError, TypeError) as err:
            yield FailureRecord(str(path), _why(err))


def jsonl_outputs(out: Path, annotated: dict[str, Path]) -> Iterator[ImageRecord | FailureRecord]:
    """A record for each line of ``OUT/results.jsonl``, named by its ``name`` or else by the annotated
    copy its input path ends with."""
    path = out / JSONL_NAME
    if not path.exists():
        return
    try:
        with open_regular_file(path) as stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                    given = doc.get("name") if isinstance(doc, dict) else None
                    name = given if isinstance(given, str) else _name_of_source(_str(doc["path"]), annotated)
                    yield page_record(doc, name, annotated.get(name))
                except (ValueError, KeyError, TypeError) as err:
                    yield FailureRecord(f"{path}:{number}", _why(err))
    except OSError as err:
        yield FailureRecord(str(path), _why(err))


def page_record(doc: Any, name: str, annotated: Path | None) -> ImageRecord:
    """The report's view of one page in the result JSON form (raises ValueError/KeyError/TypeError
    when it is not one)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("lines"), list):
        raise ValueError("not a scenetext page (no 'lines' list)")
    lines = tuple(LineRecord(_str(line["text"]), _number(line["confidence"])) for line in doc["lines"])
    timings = doc.get("timings_ms")
    total = _number(timings["total"]) if isinstance(timings, dict) and "total" in timings else None
    models = doc.get("models")
    pair = (_str(models["detector"]), _str(models["recognizer"])) if isinstance(models, dict) else None
    source = doc.get("path")
    return ImageRecord(name=name, source=name if source is None else _str(source), lines=lines, total_ms=total,
                       width=_int(doc.get("width", 0)), height=_int(doc.get("height", 0)), models=pair,
                       annotated=annotated)


def _output_files(out: Path, suffix: str) -> Iterator[tuple[str, Path]]:
    """``(name relative to OUT, path)`` of the files under ``out`` ending in ``suffix`` (hidden
    files and folders are passed over), in name order."""
    for root, dirs, files in os.walk(out):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(suffix) and not name.startswith("."):
                path = Path(root) / name
                yield path.relative_to(out).as_posix(), path


def _name_of_source(source: str, annotated: dict[str, Path]) -> str:
    """The output name of an input path: the longest tail of it that names an annotated copy, or the path itself."""
    parts = PurePath(source).parts
    for start in range(len(parts)):
        tail = "/".join(parts[start:])
        if tail in annotated:
            return tail
    return source


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"expected a number, got {value!r:.40}")
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r:.40}")
    return value


def _why(err: BaseException) -> str:
    """A one-line reason."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


# --------------------------------------------------------------------------------- thumbnails


def make_thumbnails(images: Iterable[ImageRecord], folder: Path) -> dict[str, Thumbnail]:
    """``{name: thumbnail}`` for the images with an annotated copy, made where missing.

    A thumbnail's file name is a hash of the image's name, size and modification time, so one
    made by an earlier build is reused while its annotated copy is unchanged; thumbnails no image
    uses any more are deleted. An annotated copy that cannot be read gets no thumbnail.
    """
    wanted = {}
    for image in images:
        thumb_name = _thumb_name(image) if image.annotated else None
        if thumb_name:
            wanted[image.name] = (image.annotated, folder / thumb_name)
    if not wanted:
        _remove_unused(folder, set())
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(_THREADS) as pool:
        made = dict(zip(wanted, pool.map(lambda item: _thumbnail(*item), wanted.values())))
    _remove_unused(folder, {item[1].name for item in wanted.values()})
    return {name: thumb for name, thumb in made.items() if thumb is not None}


def _thumb_name(image: ImageRecord) -> str | None:
    try:
        info = os.stat(image.annotated)
    except OSError:
        return None
    key = f"{image.name}\0{info.st_size}\0{info.st_mtime_ns}".encode("utf-8", "surrogateescape")
    return hashlib.sha1(key).hexdigest()[:20] + ".jpg"


def _thumbnail(source: Path, target: Path) -> Thumbnail | None:
    """The thumbnail of ``source`` at ``target``, made unless it exists; None if it cannot be made."""
    from PIL import Image

    from .imageio import atomic_write_bytes

    try:
        if target.is_file():
            with Image.open(target) as img:
                return Thumbnail(target, *img.size)
        import io

        with Image.open(io.BytesIO(read_regular_file(source, limit=MAX_IMAGE_BYTES))) as img:
            img.draft("RGB", (THUMB_BOX[0] * 2, THUMB_BOX[1] * 2))
            small = img.convert("RGB")
            small.thumbnail(THUMB_BOX)
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=THUMB_QUALITY, optimize=True)
        atomic_write_bytes(target, buffer.getvalue())
        return Thumbnail(target, *small.size)
    except Exception:  # noqa: BLE001 - an unreadable annotated copy only loses its thumbnail
        return None


def _remove_unused(folder: Path, keep: set[str]) -> None:
    """Delete thumbnails (and leftovers of interrupted writes) in ``folder`` not named in ``keep``."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name.endswith((".jpg", ".tmp")) and entry.name not in keep and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


# --------------------------------------------------------------------------------- the page


def render_page(report: BatchReport, thumbs: dict[str, Thumbnail], built: str = "") -> str:
    """The whole HTML page (a string) for ``report``; ``thumbs`` from :func:`make_thumbnails`."""
    style, guard, script = (_resource(name) for name in ("report.css", "report-guard.js", "report.js"))
    title = f"scenetext report: {report.out.resolve().name or report.out}"
    body = "\n".join([
        f'<header><h1>{_esc(title)}</h1><p class="meta">{_esc(str(report.out))} · built {_esc(built)}</p></header>',
        '<p id="script-errors" class="errors" hidden></p>',
        summary_section(report),
        plots_section(report),
        failures_section(report),
        slowest_section(report),
        cards_section(report, thumbs),
    ])
    return "\n".join([
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(_policy(guard, script))}">',
        f"<title>{_esc(title)}</title>",
        f"<style>{style}</style>",
        f"<script>{guard}</script>",
        "</head><body>",
        body,
        f"<script>{script}</script>",
        "</body></html>",
        "",
    ])


def summary_section(report: BatchReport) -> str:
    """The run's figures as a definition list."""
    rows = [("images with outputs", f"{len(report.images):,}"), ("lines", f"{report.line_count:,}"),
            ("failures", f"{len(report.failures):,}")]
    run = report.run
    if run is not None:
        speed = f"{run.images_per_second:.2f}" if run.processed else "–"
        rows += [("images/s", f"{speed} ({run.processed:,} read in {run.seconds:.1f} s; {run.skipped:,} skipped "
                  "as done by an earlier run)"), ("version", run.version)]
    timed = [image.total_ms for image in report.images if image.total_ms is not None]
    if timed:
        rows.append(("time per photo", f"median {_median(timed):.0f} ms, mean {sum(timed) / len(timed):.0f} ms"))
    models = report.model_counts()
    for (detector, recognizer), count in sorted(models.items(), key=lambda item: -item[1]):
        suffix = f" ({count:,} images)" if len(models) > 1 else ""
        rows.append(("models", f"detector {detector}, recogniser {recognizer}{suffix}"))
    items = "".join(f'<div class="{"wide" if len(value) > 40 else ""}"><dt>{_esc(key)}</dt><dd>{_esc(value)}</dd></div>'
                    for key, value in rows)
    return f'<section id="summary"><h2>Summary</h2><dl class="figures">{items}</dl></section>'


def plots_section(report: BatchReport) -> str:
    """The confidence histogram and the time-per-photo plot."""
    confidences = [line.confidence for image in report.images for line in image.lines]
    times = [(image.name, image.total_ms) for image in report.images if image.total_ms is not None]
    return ('<section id="plots" class="plots">'
            f'<figure><figcaption>Line confidence ({len(confidences):,} lines)</figcaption>'
            f"{confidence_histogram_svg(confidences)}</figure>"
            f'<figure><figcaption>Time per photo, in name order ({len(times):,} photos)</figcaption>'
            f"{time_plot_svg(times)}</figure></section>")


def failures_section(report: BatchReport) -> str:
    """The failed inputs with their reasons, and the output files that could not be read."""
    parts = [f'<section id="failures"><h2>Failures ({len(report.failures):,})</h2>']
    parts.append(_table(("input", "reason"), [(f.path, f.reason) for f in report.failures])
                 if report.failures else '<p class="none">No input failed.</p>')
    if report.unreadable:
        parts.append(f"<h3>Output files the report could not read ({len(report.unreadable):,})</h3>")
        parts.append(_table(("file", "reason"), [(f.path, f.reason) for f in report.unreadable]))
    parts.append("</section>")
    return "".join(parts)


def slowest_section(report: BatchReport) -> str:
    """The slowest photos, each linking to its card."""
    slowest = report.slowest()
    if not slowest:
        return '<section id="slowest"><h2>Slowest photos</h2><p class="none">No timings.</p></section>'
    rows = "".join(
        f'<tr><td><a href="#q={_esc(quote(image.name, safe=""))}">{_esc(image.name)}</a></td>'
        f'<td class="num">{image.total_ms:,.0f} ms</td><td class="num">{len(image.lines)}</td></tr>'
        for image in slowest)
    return ('<section id="slowest"><h2>Slowest photos</h2><table><thead><tr><th>image</th><th>time</th>'
            f"<th>lines</th></tr></thead><tbody>{rows}</tbody></table></section>")


def cards_section(report: BatchReport, thumbs: dict[str, Thumbnail]) -> str:
    """The card area (filled a page at a time by the script) and the card data as inline JSON."""
    data = [card_data(image, thumbs.get(image.name), report.out) for image in report.images]
    return (f'<section id="images"><h2>Images ({len(report.images):,})</h2>'
            '<div class="controls"><input id="filter" type="search" placeholder="filter by text or name" '
            'aria-label="filter by text or name"><span id="count"></span>'
            '<nav id="pager"><button id="prev" type="button">‹ previous</button><span id="page"></span>'
            '<button id="next" type="button">next ›</button></nav></div>'
            "<noscript><p>The image cards need JavaScript.</p></noscript>"
            '<div id="cards" class="cards"></div></section>'
            f'<script type="application/json" id="card-data">{script_json(data)}</script>')


def card_data(image: ImageRecord, thumb: Thumbnail | None, out: Path) -> dict[str, Any]:
    """One card's data: name, source, thumbnail and annotated copy (relative URLs), time and lines."""
    card: dict[str, Any] = {"n": image.name, "s": image.source, "ms": image.total_ms,
                            "l": [[line.text, line.confidence] for line in image.lines]}
    if thumb is not None:
        card.update(t=_href(thumb.path, out), w=thumb.width, h=thumb.height)
    if image.annotated is not None:
        card["a"] = _href(image.annotated, out)
    return card


def script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: ASCII only, with ``<``, ``>`` and ``&`` escaped."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --------------------------------------------------------------------------------- plots


def confidence_histogram_svg(confidences: list[float], bins: int = CONFIDENCE_BINS) -> str:
    """An SVG bar chart of the confidences (0-1) in ``bins`` equal bins."""
    counts = [0] * bins
    for value in confidences:
        counts[min(bins - 1, max(0, int(value * bins)))] += 1
    bars = [(count, f"{i / bins:.2f}–{(i + 1) / bins:.2f}: {count:,} lines") for i, count in enumerate(counts)]
    return _bar_chart(bars, x_labels=("0", "0.5", "1"))


def time_plot_svg(times: list[tuple[str, float]], most: int = TIME_BARS) -> str:
    """An SVG bar chart of milliseconds per photo; above ``most`` photos each bar is the slowest of a run of them."""
    group = max(1, math.ceil(len(times) / most))
    bars = []
    for start in range(0, len(times), group):
        chunk = times[start:start + group]
        name, slowest = max(chunk, key=lambda item: item[1])
        label = f"{name}: {slowest:,.0f} ms" if group == 1 else \
            f"photos {start + 1:,}–{start + len(chunk):,}: slowest {slowest:,.0f} ms ({name})"
        bars.append((slowest, label))
    return _bar_chart(bars, x_labels=("1" if times else "", "", f"{len(times):,}" if times else ""), unit=" ms")


#: Plot area of the charts, in SVG user units (the axis labels sit left of and below it).
_CHART_W, _CHART_H = 300, 100


def _bar_chart(bars: list[tuple[float, str]], x_labels: tuple[str, str, str], unit: str = "") -> str:
    """An SVG chart of equal-width bars ``(value, hover label)`` left to right, scaled to the largest value."""
    top = max((value for value, _ in bars), default=0) or 1
    step = _CHART_W / max(1, len(bars))
    rects = "".join(
        f'<rect x="{i * step:.2f}" y="{_CHART_H - value / top * _CHART_H:.2f}" width="{max(step * 0.85, 0.2):.2f}" '
        f'height="{value / top * _CHART_H:.2f}"><title>{_esc(label)}</title></rect>'
        for i, (value, label) in enumerate(bars))
    left, mid, right = (_esc(label) for label in x_labels)
    w, h = _CHART_W, _CHART_H
    return (f'<svg class="chart" viewBox="-46 -6 {w + 52} {h + 20}" role="img" xmlns="http://www.w3.org/2000/svg">'
            f'<g class="bars">{rects}</g>'
            f'<line class="axis" x1="0" y1="{h}" x2="{w}" y2="{h}"/><line class="axis" x1="0" y1="0" x2="0" y2="{h}"/>'
            f'<text x="-3" y="4" text-anchor="end">{_esc(_short(top))}{_esc(unit)}</text>'
            f'<text x="-3" y="{h}" text-anchor="end">0</text>'
            f'<text x="0" y="{h + 11}">{left}</text><text x="{w / 2}" y="{h + 11}" text-anchor="middle">{mid}</text>'
            f'<text x="{w}" y="{h + 11}" text-anchor="end">{right}</text></svg>')


def _short(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.3g}"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# --------------------------------------------------------------------------------- helpers


def _esc(text: str) -> str:
    """HTML-escaped text (quotes too, so it is safe in attributes)."""
    return html.escape(text, quote=True)


def _href(path: Path, out: Path) -> str:
    """A relative URL from ``OUT/report.html`` to ``path`` (every part percent-encoded)."""
    rel = path.relative_to(out).as_posix()
    return "./" + quote(rel.encode("utf-8", "surrogateescape"), safe="/")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{_esc(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _resource(name: str) -> str:
    return resources.files("scenetext").joinpath(f"resources/{name}").read_text(encoding="utf-8")


def _policy(*scripts: str) -> str:
    """A Content-Security-Policy that runs only ``scripts`` (by hash), loads images from the
    page's own folder only and allows no network request."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)
    return (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src 'self' file:; "
            "base-uri 'none'; form-action 'none'")
