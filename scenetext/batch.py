"""Batch runs: read many image files with a :class:`~scenetext.reader.Reader` and write each
image's outputs under one folder.

    >>> batch = BatchRun([Path("photos")], Path("out"), recursive=True)
    >>> summary = batch.run(Reader(), on_failure=print)
    >>> summary.processed, len(summary.failures)

Images are decoded ahead of the models and their outputs written behind them on worker threads,
while the models run on the calling thread. Every output file is written atomically, so an
interrupted run leaves only whole files and ``skip_existing`` resumes it. An image that cannot be
read or written is reported and the run goes on.

Outputs, per image (``<name>`` is its path relative to the folder given, or its file name):
``OUT/<name>.json`` (or ``.txt``, or one record in ``OUT/results.jsonl``) and the annotated copy
``OUT/<name>.annotated.jpg``; per run: ``OUT/summary.json`` and the report of all the outputs in OUT,
``OUT/report.html`` (thumbnails under ``OUT/.report/``).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from . import __version__

if TYPE_CHECKING:
    from .reader import LoadedImage, Reader
    from .results import PageResult

__all__ = ["BatchRun", "Failure", "ImageJob", "OutputWriter", "Summary", "collect_images", "process_images"]

#: Folder scanning picks files with these extensions (explicitly named files are always tried).
SCAN_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
ANNOTATED_SUFFIX = ".annotated.jpg"
JSONL_NAME = "results.jsonl"
SUMMARY_NAME = "summary.json"
#: Output formats: a JSON file per image, one JSON Lines file, or a text file per image.
FORMATS = ("json", "jsonl", "txt")
#: A recognition batch closes at this many images or this many decoded pixels.
BATCH_IMAGES = 8
BATCH_PIXELS = 40_000_000
#: results.jsonl is rewritten (atomically) at most this often, and at the end.
JSONL_FLUSH_SECONDS = 5.0


@dataclass(frozen=True)
class ImageJob:
    """An image to read: its path and its output name relative to OUT."""

    source: Path
    rel: str


@dataclass
class Failure:
    """An input that could not be processed, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason}


#: Callbacks of :func:`process_images`, and a decoded job.
_Fail = Callable[[ImageJob, str], None]
_Done = Callable[[ImageJob, "PageResult"], None]
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
            "failures": [f.to_dict() for f in self.failures], "version": __version__,
        }


class BatchRun:
    """A run over files and folders, writing outputs under ``out`` (see the module notes).

    Creating it finds the images and, with ``skip_existing``, the ones whose outputs exist from
    an earlier run; :meth:`run` then reads the rest.

    Attributes:
        jobs: every image found, in input order.
        todo: the jobs to read (``jobs`` less those skipped).
        failures: inputs refused before reading: folders without images, clashing output names.
    """

    def __init__(self, inputs: Iterable[Path], out: Path, *, recursive: bool = False, fmt: str = "json",
                 annotate: bool = True, skip_existing: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.out = Path(out)
        self.jobs, self.failures = collect_images(list(inputs), recursive, self.out)
        self.writer = OutputWriter(self.out, fmt, annotate, skip_existing)
        self.todo = [job for job in self.jobs if not (skip_existing and self.writer.done(job))]

    def run(self, reader: "Reader | None", workers: int = 2,
            on_failure: Callable[[Failure], None] | None = None,
            on_page: _Done | None = None, report: bool = True,
            on_report_error: Callable[[str], None] | None = None) -> Summary:
        """Read :attr:`todo` with ``reader`` (which may be ``None`` when there is nothing to do),
        write the outputs and ``OUT/summary.json``, and return the summary.

        ``on_failure(failure)`` is called for each image that fails and ``on_page(job, page)``
        for each one whose outputs are written, in input order; the failures of
        :attr:`failures` are not reported again, but are counted in the summary.

        With ``report``, ``OUT/report.html`` is then rebuilt from all the outputs in OUT (see
        :mod:`scenetext.report`); a report that cannot be written leaves the run's outputs as they
        are and is passed to ``on_report_error(reason)`` as one line (a warning when not given).
        """
        from .imageio import atomic_write_text

        summary = Summary(images=len(self.jobs), skipped=len(self.jobs) - len(self.todo),
                          failures=list(self.failures))

        def failed(job: ImageJob, reason: str) -> None:
            summary.failures.append(Failure(str(job.source), reason))
            if on_failure:
                on_failure(summary.failures[-1])

        def done(job: ImageJob, page: "PageResult") -> None:
            summary.processed += 1
            summary.lines += len(page.lines)
            if on_page:
                on_page(job, page)

        self.writer.remove_leftovers(self.jobs)
        start = time.perf_counter()
        process_images(reader, self.todo, self.writer, workers, failed, done)
        summary.seconds = time.perf_counter() - start
        atomic_write_text(self.out / SUMMARY_NAME, json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")
        if report:
            self._write_report(on_report_error)
        return summary

    def _write_report(self, on_error: Callable[[str], None] | None) -> None:
        """Rebuild ``OUT/report.html``; a failure is reported as one line, never raised."""
        from .report import write_report

        try:
            write_report(self.out)
        except Exception as err:  # noqa: BLE001 - the run's outputs are written; the report is extra
            reason = f"cannot write {self.out / 'report.html'}: {_reason(err)}"
            if on_error is None:
                import warnings

                warnings.warn(reason, RuntimeWarning, stacklevel=3)
            else:
                on_error(reason)


# --------------------------------------------------------------------------------- finding images


def collect_images(inputs: list[Path], recursive: bool, out: Path) -> tuple[list[ImageJob], list[Failure]]:
    """Images to read from files and folders, and the folders without images.

    Folder images are named relative to their folder, single files by their name. A file reached
    twice is read once; two different files that would share output names are refused. Hidden
    files and this tool's own annotated outputs are not picked up from folders.
    """
    jobs, failures = [], []
    sources: set[Path] = set()
    owners: dict[str, Path] = {}
    for given in inputs:
        if given.is_dir():
            found = _scan_folder(given, recursive, out)
            if not found:
                hint = "" if recursive else " (subfolders are read with --recursive)"
                failures.append(Failure(str(given), f"no images found{hint}"))
            candidates = [(path, path.relative_to(given).as_posix()) for path in found]
        else:
            candidates = [(given, given.name)]
        for source, rel in candidates:
            if source.resolve() in sources:
                continue
            if rel in owners:
                failures.append(Failure(str(source), f"output name {rel!r} is already used by {owners[rel]}"))
                continue
            sources.add(source.resolve())
            owners[rel] = source
            jobs.append(ImageJob(source, rel))
    return jobs, failures


def _scan_folder(folder: Path, recursive: bool, out: Path) -> list[Path]:
    """Image files in ``folder`` (and its subfolders when ``recursive``), sorted."""
    out = out.resolve()
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if recursive and not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in SCAN_EXTENSIONS:
                continue
            if name.endswith(ANNOTATED_SUFFIX) and path.resolve().is_relative_to(out):
                continue
            found.append(path)
    return found


# --------------------------------------------------------------------------------- outputs


class OutputWriter:
    """Writes each image's outputs under OUT, every file atomically.

    ``json``: ``OUT/<rel>.json``; ``txt``: ``OUT/<rel>.txt`` (one line of text per line);
    ``jsonl``: one record per image in ``OUT/results.jsonl``, rewritten atomically every few
    seconds and at the end. The annotated copy ``OUT/<rel>.annotated.jpg`` is written before the
    data, so a record on disk means the image is complete.
    """

    def __init__(self, out: Path, fmt: str, annotate: bool, skip_existing: bool):
        self.out = out
        self.fmt = fmt
        self.annotate = annotate
        self._records: dict[str, str] = self._existing_records() if fmt == "jsonl" and skip_existing else {}
        self._last_flush = time.monotonic()

    def _path(self, job: ImageJob, suffix: str) -> Path:
        return self.out / f"{job.rel}{suffix}"

    def _existing_records(self) -> dict[str, str]:
        """Records of an earlier run's ``results.jsonl`` (lines that do not parse are dropped)."""
        path = self.out / JSONL_NAME
        records = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    records[json.loads(line)["path"]] = line
                except (ValueError, KeyError, TypeError):
                    continue
        return records

    def outputs(self, job: ImageJob) -> list[Path]:
        """The files written for ``job`` (``results.jsonl`` is shared by all jobs)."""
        paths = [self._path(job, ANNOTATED_SUFFIX)] if self.annotate else []
        if self.fmt == "jsonl":
            return [*paths, self.out / JSONL_NAME]
        return [*paths, self._path(job, f".{self.fmt}")]

    def remove_leftovers(self, jobs: Iterable[ImageJob]) -> int:
        """Delete temporary files that a killed run left beside the outputs of ``jobs``.

        Only names of the form ``.<output>.<random>.tmp`` (what the atomic writers create) for
        this run's own output files and ``summary.json`` are touched. Returns how many were removed.
        """
        from .imageio import leftover_target

        wanted: dict[Path, set[str]] = {self.out: {SUMMARY_NAME}}
        for job in jobs:
            for path in self.outputs(job):
                wanted.setdefault(path.parent, set()).add(path.name)
        removed = 0
        for folder, names in wanted.items():
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                if leftover_target(entry.name) in names and entry.is_file(follow_symlinks=False):
                    try:
                        os.unlink(entry.path)
                        removed += 1
                    except OSError:
                        pass
        return removed

    def done(self, job: ImageJob) -> bool:
        """True when the job's outputs exist from an earlier run (for ``skip_existing``)."""
        if self.fmt == "jsonl":
            return str(job.source) in self._records
        if self.fmt == "txt":
            return self._path(job, ".txt").is_file()
        try:
            json.loads(self._path(job, ".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return True

    def write_files(self, job: ImageJob, rgb, page: "PageResult") -> None:
        """The annotated copy and the per-image data file (safe to call from worker threads)."""
        from .imageio import atomic_save_image, atomic_write_text
        from .render import render

        if self.annotate:
            atomic_save_image(self._path(job, ANNOTATED_SUFFIX), render(rgb, page), quality=90)
        if self.fmt == "json":
            atomic_write_text(self._path(job, ".json"), page.to_json() + "\n")
        elif self.fmt == "txt":
            atomic_write_text(self._path(job, ".txt"), "".join(f"{line.text}\n" for line in page.lines))

    def record(self, job: ImageJob, page: "PageResult") -> None:
        """Add the page to ``results.jsonl`` (``jsonl`` format; main thread only)."""
        if self.fmt == "jsonl":
            self._records[str(job.source)] = page.to_json(indent=None)
            self.flush(force=False)

    def flush(self, force: bool = True) -> None:
        """Rewrite ``results.jsonl`` atomically (unless ``force`` is false and it was done recently)."""
        from .imageio import atomic_write_text

        if self.fmt != "jsonl" or not (force or time.monotonic() - self._last_flush >= JSONL_FLUSH_SECONDS):
            return
        atomic_write_text(self.out / JSONL_NAME, "".join(f"{line}\n" for line in self._records.values()))
        self._last_flush = time.monotonic()


# --------------------------------------------------------------------------------- processing


def process_images(reader: "Reader | None", jobs: list[ImageJob], writer: OutputWriter, workers: int, fail: _Fail,
                   done: _Done) -> None:
    """Read ``jobs`` with ``reader`` and write their outputs.

    Decoding (ahead of the model) and writing (behind it) run on ``workers`` threads while the
    models run on this one; at most one batch plus ``workers`` images are decoded at a time.
    ``fail(job, reason)`` is called for each image that fails, ``done(job, page)`` for each
    finished one, in input order.
    """
    from .reader import load

    with ThreadPoolExecutor(workers) as pool:
        writes: deque = deque()
        try:
            loading = _prefetch(pool, load, jobs, workers)
            for batch in _batches(loading, fail):
                for (job, image), page in _read_batch(reader, batch, fail):
                    writes.append((job, page, pool.submit(writer.write_files, job, image.rgb, page)))
                while writes and (len(writes) > workers or writes[0][2].done()):
                    _finish_write(writes.popleft(), writer, fail, done)
            while writes:
                _finish_write(writes.popleft(), writer, fail, done)
        finally:
            writer.flush()


def _prefetch(pool: ThreadPoolExecutor, load: Callable[[Path], "LoadedImage"], jobs: list[ImageJob],
              depth: int) -> Iterator[tuple[ImageJob, Future]]:
    """Yield ``(job, future of the decoded image)``, keeping ``depth`` decodes running ahead."""
    pending: deque = deque()
    for job in jobs:
        pending.append((job, pool.submit(load, job.source)))
        if len(pending) > depth:
            yield pending.popleft()
    yield from pending


def _batches(loading: Iterable[tuple[ImageJob, Future]], fail: _Fail) -> Iterator[list[_Loaded]]:
    """Group decoded images into batches of at most BATCH_IMAGES images or BATCH_PIXELS pixels."""
    batch, pixels = [], 0
    for job, future in loading:
        try:
            image = future.result()
        except Exception as err:  # noqa: BLE001 - one bad file must not stop the run
            fail(job, _reason(err))
            continue
        batch.append((job, image))
        pixels += image.rgb.shape[0] * image.rgb.shape[1]
        if len(batch) >= BATCH_IMAGES or pixels >= BATCH_PIXELS:
            yield batch
            batch, pixels = [], 0
    if batch:
        yield batch


def _read_batch(reader: "Reader", batch: list[_Loaded], fail: _Fail) -> list[tuple[_Loaded, "PageResult"]]:
    """``[((job, image), page)]`` for a batch; if the batch fails, its images are retried one by
    one so that only the image at fault is reported."""
    try:
        return list(zip(batch, reader.read_loaded([image for _, image in batch])))
    except Exception as err:  # noqa: BLE001 - one bad file must not stop the run
        if len(batch) == 1:
            fail(batch[0][0], f"processing failed: {_reason(err)}")
            return []
    return [item for single in batch for item in _read_batch(reader, [single], fail)]


def _finish_write(entry: tuple[ImageJob, "PageResult", Future], writer: OutputWriter, fail: _Fail,
                  done: _Done) -> None:
    """Wait for one image's files, then record it (or report the write failure)."""
    job, page, future = entry
    try:
        future.result()
    except Exception as err:  # noqa: BLE001 - e.g. disk full: report it and go on
        fail(job, f"cannot write outputs: {_reason(err)}")
        return
    writer.record(job, page)
    done(job, page)


def _reason(err: BaseException) -> str:
    """One-line reason for a failure."""
    from .imageio import ImageLoadError

    if isinstance(err, ImageLoadError):
        return err.problem
    return f"{type(err).__name__}: {err}".splitlines()[0]
