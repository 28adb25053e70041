"""Batch runs: read many image files with a :class:`~scenetext.reader.Reader` and write each
image's outputs under one folder.

    >>> batch = BatchRun([Path("photos")], Path("out"), recursive=True)
    >>> summary = batch.run(Reader(), on_failure=print)
    >>> summary.processed, len(summary.failures)

Images are decoded ahead of the models and their outputs written behind them on worker threads,
while the models run on the calling thread. Every output file is written atomically, and
``results.jsonl`` grows by whole records, so an interrupted run leaves only whole outputs and
``skip_existing`` resumes it. An image that cannot be read or written is reported and the run
goes on.

Inputs and OUT are local paths or URIs of any filesystem pyarrow opens (``s3://bucket/photos``):
every file operation goes through a :class:`~scenetext.storage.Storage`, so both take this
module's one code path (see :mod:`scenetext.storage` for how the two kinds differ).

Outputs, per image (``<name>`` is its path relative to the folder given, or its file name):
``OUT/<name>.json`` (or ``.txt``, or one record in ``OUT/results.jsonl``) and the annotated copy
``OUT/<name>.annotated.jpg``; per run: ``OUT/summary.json`` and the report of all the outputs in OUT,
``OUT/report.html`` (thumbnails under ``OUT/.report/``).

What is found on disk, and what is done with it:

* regular files (and symbolic links to them) are read; a file reached twice (two names, or a
  link) is read once;
* FIFOs, sockets, device files and broken or looping symbolic links are reported as failures
  and never opened; so is a subfolder that cannot be listed;
* symbolic links to folders are not followed when scanning a folder;
* an output never replaces an input of the run, a ``.json`` holding a JSON object that is not
  a page result (someone's sidecar data), an annotated copy that this tool did not write (ours
  carry a JPEG comment) or the run's own ``summary.json`` / ``results.jsonl``: the image whose
  output that would be is refused.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Callable, Hashable, Iterable, Iterator

from . import __version__
from .results import Failure
from .storage import LOCAL, Location, RecordLog, Storage, locate

if TYPE_CHECKING:
    from .reader import LoadedImage, Reader
    from .results import PageResult

__all__ = ["BatchRun", "Failure", "ImageJob", "Notice", "OutputWriter", "Summary", "collect_images",
           "failure_reason", "process_images", "read_isolated"]

#: Folder scanning picks files with these extensions (explicitly named files are always tried).
SCAN_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
ANNOTATED_SUFFIX = ".annotated.jpg"
#: The JPEG comment that marks an annotated copy as written by this tool.
ANNOTATED_MARK = b"scenetext annotated copy"
JSONL_NAME = "results.jsonl"
SUMMARY_NAME = "summary.json"
#: Files of the run itself in OUT, which no image's output may take.
RESERVED_NAMES = frozenset({SUMMARY_NAME, JSONL_NAME, "report.html"})
#: Output formats: a JSON file per image, one JSON Lines file, or a text file per image.
FORMATS = ("json", "jsonl", "txt")
#: Why an OUT on a filesystem other than the local disk gets no report.
REPORT_NOT_LOCAL = ("report.html is not written here: it is built from local files (copy OUT to a local disk and "
                    "run 'scenetext report' on the copy)")
#: A recognition batch closes at this many images or this many decoded pixels (each image held
#: costs its pixels in memory: 16 MP is one 12-megapixel photo and a few small ones; batches of 4
#: 1280x720 photos instead of 8 peaked ~50 MB lower over 200 photos but read ~8 % fewer per second).
BATCH_IMAGES = 8
BATCH_PIXELS = 16_000_000


@dataclass(frozen=True)
class ImageJob:
    """An image to read: its path on ``store``, its output name relative to OUT and the file's
    identity (``(st_dev, st_ino)`` on the local disk, ``None`` when not known)."""

    source: PurePath
    rel: str
    identity: Hashable | None = None
    store: Storage = LOCAL

    @property
    def name(self) -> str:
        """The input as failures and notices name it: its path, or its URI."""
        return self.store.show(self.source)


@dataclass(frozen=True)
class Notice:
    """Something to know about an input that was read, e.g. that only its first page was."""

    path: str
    message: str

    def to_dict(self) -> dict:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True)
class _Decoded:
    """A decoded job: the image and how many pages its file has."""

    image: "LoadedImage"
    pages: int


#: Callbacks of :func:`process_images`, and a decoded job.
_Fail = Callable[[ImageJob, str], None]
_Done = Callable[[ImageJob, "PageResult"], None]
_Note = Callable[[ImageJob, str], None]
_Loaded = tuple[ImageJob, "LoadedImage"]


# --------------------------------------------------------------------------------- the run


@dataclass
class Summary:
    """Counts of a run, as written to ``OUT/summary.json``."""

    images: int
    skipped: int
    processed: int = 0
    lines: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Number of failed inputs."""
        return len(self.failures)

    @property
    def images_per_second(self) -> float:
        """Images processed per second of the run (rounded to 3 decimals)."""
        return round(self.processed / self.seconds, 3) if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "images": self.images, "processed": self.processed, "skipped": self.skipped,
            "failed": self.failed, "lines": self.lines, "seconds": round(self.seconds, 3),
            "images_per_second": self.images_per_second,
            "failures": [f.to_dict() for f in self.failures],
            "notices": [n.to_dict() for n in self.notices], "version": __version__,
        }


class BatchRun:
    """A run over files and folders, writing outputs under ``out`` (see the module notes).

    Creating it finds the images and, with ``skip_existing``, the ones whose outputs exist from
    an earlier run; :meth:`run` then reads the rest.

    Attributes:
        jobs: every image found, in input order.
        todo: the jobs to read (``jobs`` less those skipped).
        failures: inputs refused before reading: folders without images or that cannot be read,
            files that are not regular files, clashing output names, outputs that would
            replace an input or a file this tool did not write.
    """

    def __init__(self, inputs: Iterable[Path | str | Location], out: Path | str | Location, *,
                 recursive: bool = False, fmt: str = "json", annotate: bool = True, skip_existing: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        where, given = locate(out), [locate(item) for item in inputs]
        self.out, self.store = where.path, where.store
        with contextlib.ExitStack() as listings:  # on an object store: listings, not a request per image
            listings.enter_context(self.store.listing(self.out))
            for store in {item.store for item in given} - {self.store}:
                listings.enter_context(store.listing(None))
            jobs, self.failures = collect_images(given, recursive, where)
            self.writer = OutputWriter(self.out, fmt, annotate, skip_existing, store=self.store)
            inputs_seen = {job.identity for job in jobs}
            self.jobs = []
            for job, refusal in zip(jobs, self.store.map(lambda job: self.writer.refusal(job, inputs_seen), jobs)):
                if refusal:
                    self.failures.append(Failure(job.name, refusal))
                else:
                    self.jobs.append(job)
            finished = self.store.map(self.writer.done, self.jobs) if skip_existing else [False] * len(self.jobs)
            self.todo = [job for job, done in zip(self.jobs, finished) if not done]

    def run(self, reader: "Reader | None", workers: int = 2,
            on_failure: Callable[[Failure], None] | None = None,
            on_page: _Done | None = None, on_notice: Callable[[Notice], None] | None = None,
            report: bool = True, on_report_error: Callable[[str], None] | None = None) -> Summary:
        """Read :attr:`todo` with ``reader`` (which may be ``None`` when there is nothing to do),
        write the outputs and ``OUT/summary.json``, and return the summary.

        ``on_failure(failure)`` is called for each image that fails (and for a summary that
        cannot be written), ``on_page(job, page)`` for each one whose outputs are written, in
        input order, and ``on_notice(notice)`` for what to know about an image that was read
        (only the first page of a multi-page file is read); the failures of :attr:`failures`
        are not reported again, but are counted in the summary.

        With ``report``, ``OUT/report.html`` is then rebuilt from all the outputs in OUT (see
        :mod:`scenetext.report`); a report that cannot be written leaves the run's outputs as they
        are and is passed to ``on_report_error(reason)`` as one line (a warning when not given).
        The report is built from local files: for an OUT that is not on the local disk it is not
        written, which ``summary.json`` (a notice) and ``on_report_error`` say.
        """
        summary = Summary(images=len(self.jobs), skipped=len(self.jobs) - len(self.todo),
                          failures=list(self.failures))

        def failed(job: ImageJob, reason: str) -> None:
            summary.failures.append(Failure(job.name, reason))
            if on_failure:
                on_failure(summary.failures[-1])

        def done(job: ImageJob, page: "PageResult") -> None:
            summary.processed += 1
            summary.lines += len(page.lines)
            if on_page:
                on_page(job, page)

        def noted(job: ImageJob, message: str) -> None:
            summary.notices.append(Notice(job.name, message))
            if on_notice:
                on_notice(summary.notices[-1])

        self.writer.remove_leftovers(self.jobs)
        start = time.perf_counter()
        process_images(reader, self.todo, self.writer, workers, failed, done, noted)
        summary.seconds = time.perf_counter() - start
        self.finish(summary, on_failure, report, on_report_error)
        return summary

    def finish(self, summary: Summary, on_failure: Callable[[Failure], None] | None, report: bool,
               on_report_error: Callable[[str], None] | None) -> None:
        """Write ``OUT/summary.json`` and, with ``report``, ``OUT/report.html``; what cannot be
        written is one more failure (the summary) or one line to ``on_report_error`` (the report)."""
        self.writer.check_closed(summary.failures, on_failure)
        if report and not self.store.local:
            summary.notices.append(Notice(str(Location(self.store, self.out)), REPORT_NOT_LOCAL))
        path = self.out / SUMMARY_NAME
        try:
            self.store.write_bytes(path, (json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")
                                   .encode("utf-8"))
        except OSError as err:
            reason = f"cannot write the run summary: {failure_reason(err)}"
            summary.failures.append(Failure(self.store.show(path), reason))
            if on_failure:
                on_failure(summary.failures[-1])
        if report:
            self._write_report(on_report_error)

    def _write_report(self, on_error: Callable[[str], None] | None) -> None:
        """Rebuild ``OUT/report.html``; a failure is reported as one line, never raised."""
        from .report import write_report

        def say(reason: str) -> None:
            if on_error is None:
                import warnings

                warnings.warn(reason, RuntimeWarning, stacklevel=5)
            else:
                on_error(reason)

        if not self.store.local:
            say(f"{Location(self.store, self.out)}: {REPORT_NOT_LOCAL}")
            return
        try:
            write_report(self.out)
        except Exception as err:  # noqa: BLE001 - the run's outputs are written; the report is extra
            say(f"cannot write {self.out / 'report.html'}: {failure_reason(err)}")


# --------------------------------------------------------------------------------- finding images


def collect_images(inputs: list[Path | str | Location], recursive: bool,
                   out: Path | str | Location) -> tuple[list[ImageJob], list[Failure]]:
    """Images to read from files and folders (local paths, URIs or :class:`~scenetext.storage.Location`
    objects), and the inputs refused.

    Folder images are named relative to their folder, single files by their name. A file reached
    twice (by two names or through a link) is read once; two different files that would share
    output names are refused. Hidden files and this tool's own annotated outputs are not picked
    up from folders. Anything that is not a regular file (a FIFO, socket, device, broken or
    looping link) is refused without being opened, as are folders that cannot be listed.
    """
    from .imageio import ImageLoadError

    out = locate(out)
    jobs, failures = [], []
    seen: set[Hashable] = set()
    owners: dict[str, str] = {}
    for given in map(locate, inputs):
        store = given.store
        if store.is_dir(given.path):
            found, problems = _scan_folder(given, recursive, out)
            failures += problems
            if not found and not problems:
                hint = "" if recursive else " (subfolders are read with --recursive)"
                failures.append(Failure(str(given), f"no images found{hint}"))
            candidates = [(path, path.relative_to(given.path).as_posix()) for path in found]
        else:
            candidates = [(given.path, given.path.name)]
        for source, rel in candidates:
            try:
                identity = store.file_identity(source)
            except ImageLoadError as err:
                failures.append(Failure(store.show(source), err.problem))
                continue
            if identity in seen:
                continue
            if rel in owners:
                failures.append(Failure(store.show(source), f"output name {rel!r} is already used by {owners[rel]}"))
                continue
            seen.add(identity)
            owners[rel] = store.show(source)
            jobs.append(ImageJob(source, rel, identity, store))
    return jobs, failures


def _scan_folder(folder: Location, recursive: bool, out: Location) -> tuple[list[PurePath], list[Failure]]:
    """Image files in ``folder`` (and its subfolders when ``recursive``), sorted; and the
    folders that could not be listed."""
    store = folder.store
    files, problems = store.walk_files(folder.path, recursive)
    found: list[PurePath] = []
    for path in files:
        name = path.name
        if name.startswith(".") or path.suffix.lower() not in SCAN_EXTENSIONS:
            continue
        if name.endswith(ANNOTATED_SUFFIX) and store == out.store and store.within(path, out.path) \
                and is_annotated_copy(path, store):
            continue
        found.append(path)
    return found, problems


def is_annotated_copy(path: PurePath, store: Storage = LOCAL) -> bool:
    """True when ``path`` is a regular file holding an annotated copy this tool wrote (a JPEG
    whose comment segment, before the image data, is :data:`ANNOTATED_MARK`)."""
    from .imageio import ImageLoadError, jpeg_comments

    try:
        head = store.read_head(path, 4096)
    except (ImageLoadError, OSError):
        return False
    return ANNOTATED_MARK in jpeg_comments(head)


# --------------------------------------------------------------------------------- outputs


class OutputWriter:
    """Writes each image's outputs under OUT (on ``store``: the local disk unless given).

    ``json``: ``OUT/<rel>.json``; ``txt``: ``OUT/<rel>.txt`` (one line of text per line); both
    written atomically. ``jsonl``: one record per image appended to ``OUT/results.jsonl`` (the
    page's JSON form with its output ``name`` first, which keys it): a record that cannot be
    written is taken back off the file, and when a run starts, a torn last line, records that
    do not parse and the records of the images about to be read again are dropped (on a
    filesystem that cannot append, the file is written whole when the run ends). The
    annotated copy ``OUT/<rel>.annotated.jpg`` is written before the data, so a record on disk
    means the image is complete.
    """

    def __init__(self, out: PurePath, fmt: str, annotate: bool, skip_existing: bool, store: Storage = LOCAL):
        self.out = out
        self.fmt = fmt
        self.annotate = annotate
        self.store = store
        self._records, self._clean = self._existing_records() if fmt == "jsonl" else ({}, True)
        self._jsonl: RecordLog | None = None  # results.jsonl while a run appends to it
        self._close_error: str | None = None

    def _path(self, job: ImageJob, suffix: str) -> PurePath:
        return self.out / f"{job.rel}{suffix}"

    def _existing_records(self) -> tuple[dict[str, str], bool]:
        """Records of an earlier run's ``results.jsonl`` by name, and whether every line was a
        whole record (a torn last line, a line that does not parse or a repeated name are not)."""
        from .imageio import ImageLoadError

        try:
            text = self.store.read_bytes(self.out / JSONL_NAME).decode("utf-8", "replace")
        except (ImageLoadError, OSError):
            return {}, True
        records: dict[str, str] = {}
        lines = text.split("\n")
        clean = lines[-1] == ""
        for line in lines[:-1]:
            try:
                record = json.loads(line)
                name = record["name"]
                if not isinstance(name, str) or name in records:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                clean = False
                continue
            records[name] = line
        return records, clean

    def outputs(self, job: ImageJob) -> list[PurePath]:
        """The files written for ``job`` (``results.jsonl`` is shared by all jobs)."""
        paths = [self._path(job, ANNOTATED_SUFFIX)] if self.annotate else []
        if self.fmt == "jsonl":
            return [*paths, self.out / JSONL_NAME]
        return [*paths, self._path(job, f".{self.fmt}")]

    def refusal(self, job: ImageJob, inputs: set[Hashable | None]) -> str | None:
        """Why ``job``'s outputs may not be written (``None`` when they may): one would replace a
        file of the run itself, an input of the run (``inputs``: their identities), a ``.json``
        holding a JSON object that is not a page result, or an annotated copy that this tool did
        not write."""
        for path in self.outputs(job):
            if path == self.out / JSONL_NAME:
                continue
            shown = self.store.show(path)
            if path.parent == self.out and path.name in RESERVED_NAMES:
                return f"its output {path.name} would replace the run's own {path.name}"
            entry = self.store.entry(path)
            if entry is None:
                continue
            if entry.identity in inputs:
                return f"its output {shown} would replace an input of this run"
            if not entry.regular:
                continue  # writing fails and is reported then
            if path.name.endswith(ANNOTATED_SUFFIX) and not is_annotated_copy(path, self.store):
                return f"{shown} exists and is not an annotated copy written by scenetext; it is not replaced"
            if path.suffix == ".json" and _is_foreign_json(path, self.store):
                return f"{shown} exists and holds JSON data that is not a scenetext result; it is not replaced"
        return None

    def remove_leftovers(self, jobs: Iterable[ImageJob]) -> int:
        """Delete temporary files that a killed run left beside the outputs of ``jobs``.

        Only names of the form ``.<output>.<random>.tmp`` (what the atomic writers create) for
        this run's own output files and ``summary.json`` are touched. Returns how many were removed.
        """
        wanted: dict[PurePath, set[str]] = {self.out: {SUMMARY_NAME}}
        for job in jobs:
            for path in self.outputs(job):
                wanted.setdefault(path.parent, set()).add(path.name)
        return sum(self.store.remove_leftovers(folder, names) for folder, names in wanted.items())

    def done(self, job: ImageJob) -> bool:
        """True when the job's outputs exist from an earlier run (for ``skip_existing``): its data
        (a page result, for ``json`` and ``jsonl``) and, when annotating, its annotated copy."""
        if self.annotate and not is_annotated_copy(self._path(job, ANNOTATED_SUFFIX), self.store):
            return False
        if self.fmt == "jsonl":
            return job.rel in self._records
        if self.fmt == "txt":
            return self.store.is_file(self._path(job, ".txt"))
        return _is_page_file(self._path(job, ".json"), self.store)

    def start(self, todo: Iterable[ImageJob]) -> None:
        """Get ready to write the outputs of ``todo``: for ``jsonl``, drop their old records (and any
        torn or unreadable line) from ``results.jsonl`` and open it for appending."""
        if self.fmt != "jsonl":
            return
        again = [job.rel for job in todo if job.rel in self._records]
        for rel in again:
            del self._records[rel]
        kept = "".join(f"{line}\n" for line in self._records.values()).encode("utf-8")
        self._jsonl = self.store.open_log(self.out / JSONL_NAME, kept, rewrite=bool(again) or not self._clean)
        self._clean = True

    def write_files(self, job: ImageJob, rgb, page: "PageResult") -> None:
        """The annotated copy and the per-image data file (safe to call from worker threads)."""
        from .imageio import encode_jpeg
        from .render import render_image

        if self.annotate:
            # Encoded from the drawing itself: no array copy of it and no BGR copy for OpenCV.
            jpeg = encode_jpeg(render_image(rgb, page), quality=90, comment=ANNOTATED_MARK)
            self.store.write_bytes(self._path(job, ANNOTATED_SUFFIX), jpeg)
        if self.fmt == "json":
            self.store.write_bytes(self._path(job, ".json"), (page.to_json() + "\n").encode("utf-8"))
        elif self.fmt == "txt":
            self.store.write_bytes(self._path(job, ".txt"),
                                   "".join(f"{line.text}\n" for line in page.lines).encode("utf-8"))

    def record(self, job: ImageJob, page: "PageResult") -> None:
        """Append the page to ``results.jsonl`` (``jsonl`` format; main thread only, after :meth:`start`).

        Raises:
            OSError: the record could not be written (it is then taken back off the file).
        """
        if self.fmt != "jsonl":
            return
        if self._jsonl is None:
            raise OSError(f"{self.store.show(self.out / JSONL_NAME)}: not open for writing")
        line = json.dumps({"name": job.rel, **page.to_dict()}, ensure_ascii=False)
        self._jsonl.append(f"{line}\n".encode("utf-8"))
        self._records[job.rel] = line

    def close(self) -> None:
        """Flush ``results.jsonl`` to disk and close it (``jsonl`` format); a file that must be
        written whole and cannot be is kept for :meth:`check_closed`."""
        if self._jsonl is not None:
            log, self._jsonl = self._jsonl, None
            try:
                log.close()
            except OSError as err:
                self._close_error = f"cannot write outputs: {failure_reason(err)}"

    def check_closed(self, failures: list[Failure], on_failure: Callable[[Failure], None] | None) -> None:
        """Add to ``failures`` (and pass to ``on_failure``) a ``results.jsonl`` that :meth:`close`
        could not write."""
        if self._close_error:
            failures.append(Failure(self.store.show(self.out / JSONL_NAME), self._close_error))
            self._close_error = None
            if on_failure:
                on_failure(failures[-1])


def _is_foreign_json(path: PurePath, store: Storage = LOCAL) -> bool:
    """True when ``path`` holds a JSON object that is not a page result of this tool (no
    ``lines`` and ``version`` keys: someone's data, such as a photo's sidecar file). A file that
    does not parse, or holds anything else, is a broken output and may be replaced."""
    from .imageio import ImageLoadError

    try:
        document = json.loads(store.read_bytes(path))
    except (ImageLoadError, OSError, ValueError, RecursionError):
        return False
    return isinstance(document, dict) and not {"lines", "version"} <= document.keys()


def _is_page_file(path: PurePath, store: Storage = LOCAL) -> bool:
    """True when ``path`` is a regular file holding a page result in its JSON form."""
    from .imageio import ImageLoadError
    from .results import SchemaError, validate_result

    try:
        validate_result(json.loads(store.read_bytes(path).decode("utf-8")))
    except (ImageLoadError, OSError, ValueError, SchemaError, RecursionError):
        return False
    return True


# --------------------------------------------------------------------------------- processing


def process_images(reader: "Reader | None", jobs: list[ImageJob], writer: OutputWriter, workers: int, fail: _Fail,
                   done: _Done, note: _Note | None = None) -> None:
    """Read ``jobs`` with ``reader`` and write their outputs.

    Decoding (ahead of the model) and writing (behind it) run on ``workers`` threads while the
    models run on this one; at most one batch plus ``workers`` images are decoded at a time.
    ``fail(job, reason)`` is called for each image that fails, ``done(job, page)`` for each
    finished one, in input order, and ``note(job, message)`` for a file with several pages
    (only the first is read).
    """
    note = note or (lambda job, message: None)
    try:
        writer.start(jobs)
    except OSError as err:
        for job in jobs:
            fail(job, f"cannot write outputs: {failure_reason(err)}")
        return
    with ThreadPoolExecutor(workers) as pool:
        writes: deque = deque()
        try:
            loading = _prefetch(pool, _load_job, jobs, workers)
            for batch in _batches(loading, fail, note):
                for (job, image), page in _read_batch(reader, batch, fail):
                    writes.append((job, page, pool.submit(writer.write_files, job, image.rgb, page)))
                while writes and (len(writes) > workers or writes[0][2].done()):
                    _finish_write(writes.popleft(), writer, fail, done)
            while writes:
                _finish_write(writes.popleft(), writer, fail, done)
        finally:
            writer.close()


def _load_job(job: ImageJob) -> _Decoded:
    """Decode a job's image, timing it (as :func:`scenetext.reader.load` does), and count its pages."""
    from .reader import LoadedImage

    start = time.perf_counter()
    decoded = job.store.decode(job.source)
    return _Decoded(LoadedImage(decoded.rgb, job.name, (time.perf_counter() - start) * 1000.0), decoded.pages)


def _prefetch(pool: ThreadPoolExecutor, load: Callable[[ImageJob], _Decoded], jobs: list[ImageJob],
              depth: int) -> Iterator[tuple[ImageJob, Future]]:
    """Yield ``(job, future of the decoded image)``, keeping ``depth`` decodes running ahead."""
    pending: deque = deque()
    for job in jobs:
        pending.append((job, pool.submit(load, job)))
        if len(pending) > depth:
            yield pending.popleft()
    yield from pending


def _batches(loading: Iterable[tuple[ImageJob, Future]], fail: _Fail, note: _Note) -> Iterator[list[_Loaded]]:
    """Group decoded images into batches of at most BATCH_IMAGES images or BATCH_PIXELS pixels."""
    batch, pixels = [], 0
    for job, future in loading:
        try:
            decoded = future.result()
        except Exception as err:  # noqa: BLE001 - one bad file must not stop the run
            fail(job, failure_reason(err))
            continue
        if decoded.pages > 1:
            note(job, f"has {decoded.pages} pages: only page 1 is read")
        batch.append((job, decoded.image))
        pixels += decoded.image.rgb.shape[0] * decoded.image.rgb.shape[1]
        if len(batch) >= BATCH_IMAGES or pixels >= BATCH_PIXELS:
            yield batch
            batch, pixels = [], 0
    if batch:
        yield batch


def read_isolated(reader: "Reader", images: list["LoadedImage"]) -> list["PageResult | Exception"]:
    """Read decoded images in one batch; if the batch fails, its images are retried one by one
    (halves first), so only an image at fault gets its exception in place of its page."""
    if not images:
        return []
    try:
        return list(reader.read_loaded(images))
    except Exception as err:  # noqa: BLE001 - one bad image must not sink its batch
        if len(images) == 1:
            return [err]
    middle = len(images) // 2
    return read_isolated(reader, images[:middle]) + read_isolated(reader, images[middle:])


def _read_batch(reader: "Reader", batch: list[_Loaded], fail: _Fail) -> list[tuple[_Loaded, "PageResult"]]:
    """``[((job, image), page)]`` for a batch; an image the models fail on alone is reported."""
    kept = []
    for item, outcome in zip(batch, read_isolated(reader, [image for _, image in batch])):
        if isinstance(outcome, Exception):
            fail(item[0], f"processing failed: {failure_reason(outcome)}")
        else:
            kept.append((item, outcome))
    return kept


def _finish_write(entry: tuple[ImageJob, "PageResult", Future], writer: OutputWriter, fail: _Fail,
                  done: _Done) -> None:
    """Wait for one image's files, then record it (or report the write failure)."""
    job, page, future = entry
    try:
        future.result()
        writer.record(job, page)
    except Exception as err:  # noqa: BLE001 - e.g. disk full: report it and go on
        fail(job, f"cannot write outputs: {failure_reason(err)}")
        return
    done(job, page)


def failure_reason(err: BaseException) -> str:
    """One-line reason for a failure."""
    from .imageio import ImageLoadError

    if isinstance(err, ImageLoadError):
        return err.problem
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}" + (f": {err.filename}" if err.filename else "")
    return f"{type(err).__name__}: {err}".splitlines()[0]

