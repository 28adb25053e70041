"""Batch runs on a Ray cluster, built on Ray Data (optional: ``pip install 'scenetext[ray]'``).

    >>> batch = BatchRun([Path("photos")], Path("out"), skip_existing=True)
    >>> summary = run_on_ray(batch, functools.partial(Reader), address="local", workers=2)
    >>> batch = BatchRun(["s3://archive/photos"], "s3://archive/ocr", recursive=True)  # object stores too

The driver lists the images exactly as a plain run does (:class:`~scenetext.batch.BatchRun`:
the same output names, the same refusals, ``skip_existing``), then streams the jobs through a
Ray Data pipeline, :data:`~scenetext.batch.BATCH_IMAGES` at a time, to a pool of actors. Each
actor loads the models once, sets torch's threads from the CPUs it was given, and decodes, reads
and writes its images' outputs with the plain run's own code
(:func:`~scenetext.batch.process_images`), every file atomically, so a failed image has the
same one-line reason and a killed run resumes with ``skip_existing``. Only each image's outcome
(name, line count, failure reason; for ``jsonl`` its record) travels back to the driver, which
writes ``results.jsonl``, ``OUT/summary.json`` and the report. An actor that is lost (its node
gone, killed for memory) is restarted by Ray Data and its batch retried. No image bytes pass through Ray's
object store, whose share is capped (:data:`OBJECT_STORE_BYTES`), so memory stays bounded on a
folder of any size.

Inputs and OUT are paths every node can see (a local disk for ``local``, a shared or network
file system on a cluster), or URIs of any filesystem pyarrow opens (``s3://bucket/photos``,
``gs://...``), through the same code path: the driver lists them, each actor reads its images'
bytes from there and writes their outputs back, each as one whole object (see
:mod:`scenetext.storage`). On such a filesystem ``results.jsonl`` is written when the run ends and
``report.html`` is not written (it is built from local files), which ``summary.json`` says.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .batch import BATCH_IMAGES, Failure, ImageJob, OutputWriter, Summary, process_images
from .storage import Storage

if TYPE_CHECKING:
    from .batch import BatchRun
    from .reader import Reader
    from .results import PageResult

__all__ = ["Outcome", "RayRunError", "RayUnavailable", "run_on_ray"]

#: The object store's share of memory on a local cluster, and the cap on what the pipeline holds in it.
OBJECT_STORE_BYTES = 256 << 20


class RayUnavailable(RuntimeError):
    """Ray is not installed (``pip install 'scenetext[ray]'``) or the cluster cannot be reached."""


class RayRunError(RuntimeError):
    """The pipeline stopped (an actor could not start, or failed past Ray's retries); the outputs
    written so far are whole, and a run with ``skip_existing`` goes on from them."""


@dataclass(frozen=True)
class Outcome:
    """What an actor reports for one image."""

    source: str
    rel: str
    lines: int
    reason: str  # "" when the image was read and its outputs written
    record: str  # the page's JSON, for the jsonl format (written by the driver)
    notice: str
    worker: int  # the actor's process id
    peak_rss_mb: float  # the actor's peak resident memory so far
    cpu_seconds: float  # CPU time (all its threads) the actor has spent reading images so far

    @property
    def ok(self) -> bool:
        return not self.reason


def run_on_ray(batch: "BatchRun", make_reader: Callable[[], "Reader"], *, address: str = "local",
               workers: int = 2, cpus_per_worker: int = 1,
               on_failure: Callable[[Failure], None] | None = None,
               on_page: Callable[[ImageJob, int], None] | None = None, report: bool = True,
               on_report_error: Callable[[str], None] | None = None,
               on_outcome: Callable[[Outcome], None] | None = None) -> Summary:
    """Read ``batch.todo`` on Ray with ``workers`` actors of ``cpus_per_worker`` CPUs each and write
    the same outputs as :meth:`BatchRun.run <scenetext.batch.BatchRun.run>`; return the summary.

    ``make_reader()`` builds each actor's :class:`~scenetext.reader.Reader` (it must pickle:
    a module-level function or a :func:`functools.partial` of one). ``address``: ``"local"``
    starts a cluster on this machine for the run (unless Ray is already initialised here), any
    other value is passed to ``ray.init(address=...)``. ``on_failure(failure)`` and
    ``on_page(job, lines)`` are called as outcomes arrive (in completion order), and
    ``on_outcome(outcome)`` with each image's :class:`Outcome` (which actor, its peak memory).

    Raises:
        RayUnavailable: Ray is not installed or the cluster cannot be reached.
        RayRunError: the pipeline stopped; ``summary.json`` is not written.
    """
    summary = Summary(images=len(batch.jobs), skipped=len(batch.jobs) - len(batch.todo),
                      failures=list(batch.failures))
    batch.writer.remove_leftovers(batch.jobs)
    start = time.perf_counter()
    if batch.todo:
        started = _connect(address, workers * cpus_per_worker)
        try:
            _run_jobs(batch, make_reader, workers, cpus_per_worker, summary, on_failure, on_page, on_outcome)
        finally:
            if started:
                import ray

                ray.shutdown()
    summary.seconds = time.perf_counter() - start
    batch.finish(summary, on_failure, report, on_report_error)
    return summary


def _connect(address: str, cpus: int) -> bool:
    """Initialise Ray for ``address``; True when this call started it (and should shut it down)."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("Ray is not installed: pip install 'scenetext[ray]'") from None
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False,
                               "configure_logging": False}
    try:
        if address == "local":
            ray.init(address="local", num_cpus=max(cpus, 1), object_store_memory=OBJECT_STORE_BYTES, **options)
        else:
            ray.init(address=address, **options)
    except Exception as err:  # noqa: BLE001 - Ray raises many kinds for a cluster it cannot reach
        raise RayUnavailable(f"cannot start or reach the Ray cluster {address!r}: {_first_line(err)}") from None
    return True


def _run_jobs(batch: "BatchRun", make_reader: Callable[[], "Reader"], workers: int, cpus_per_worker: int,
              summary: Summary, on_failure: Callable[[Failure], None] | None,
              on_page: Callable[[ImageJob, int], None] | None, on_outcome: Callable[[Outcome], None] | None) -> None:
    """Stream ``batch.todo`` through the actor pool and gather the outcomes into ``summary``."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = False
    context.execution_options.resource_limits = context.execution_options.resource_limits.copy(
        object_store_memory=OBJECT_STORE_BYTES)
    stores: list[Storage] = []
    for job in batch.todo:
        if job.store not in stores:
            stores.append(job.store)
    items = [{"source": str(job.source), "rel": job.rel, "store": stores.index(job.store)} for job in batch.todo]
    jobs = {job.rel: job for job in batch.todo}
    batch_size = max(1, min(BATCH_IMAGES, math.ceil(len(items) / workers)))
    dataset = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / batch_size))
    outcomes = dataset.map_batches(
        _Worker, batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_per_worker,
        fn_constructor_kwargs={"out": str(batch.out), "out_store": batch.store, "stores": stores,
                               "fmt": batch.writer.fmt, "annotate": batch.writer.annotate,
                               "make_reader": make_reader, "threads": cpus_per_worker})
    writer = batch.writer
    writer.start(batch.todo)
    try:
        for row in _rows(outcomes):
            outcome = _outcome(row)
            _gather(outcome, jobs, writer, summary, on_failure, on_page)
            if on_outcome:
                on_outcome(outcome)
    finally:
        writer.close()


def _rows(dataset) -> Iterator[dict[str, Any]]:
    """The dataset's rows as they stream in; a failure of the pipeline becomes one :class:`RayRunError`."""
    rows = iter(dataset.iter_rows())
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as err:  # noqa: BLE001 - Ray wraps what failed in its own exception kinds
            raise RayRunError(f"the Ray run stopped: {root_reason(err)}") from err
        yield row


def _outcome(row: dict[str, Any]) -> Outcome:
    return Outcome(source=str(row["source"]), rel=str(row["rel"]), lines=int(row["lines"]), reason=str(row["reason"]),
                   record=str(row["record"]), notice=str(row["notice"]), worker=int(row["worker"]),
                   peak_rss_mb=float(row["peak_rss_mb"]), cpu_seconds=float(row["cpu_seconds"]))


def _gather(outcome: Outcome, jobs: dict[str, ImageJob], writer: OutputWriter, summary: Summary,
            on_failure: Callable[[Failure], None] | None, on_page: Callable[[ImageJob, int], None] | None) -> None:
    """Count one outcome (and for ``jsonl`` append its record) as the plain run does."""
    from .batch import Notice, failure_reason
    from .results import PageResult

    job = jobs[outcome.rel]
    reason = outcome.reason
    if not reason and outcome.record:
        try:
            writer.record(job, PageResult.from_dict(json.loads(outcome.record)))
        except OSError as err:
            reason = f"cannot write outputs: {failure_reason(err)}"
    if outcome.notice:
        summary.notices.append(Notice(outcome.source, outcome.notice))
    if reason:
        summary.failures.append(Failure(outcome.source, reason))
        if on_failure:
            on_failure(summary.failures[-1])
        return
    summary.processed += 1
    summary.lines += outcome.lines
    if on_page:
        on_page(job, outcome.lines)


def root_reason(err: BaseException) -> str:
    """One line for an error that Ray wrapped (perhaps several times, with the remote traceback in
    its text): the last ``SomeError: message`` line of the remote traceback, else the first line."""
    text = _ANSI.sub("", str(err))
    raised = [line.strip() for line in text.splitlines() if _RAISED.match(line.strip())]
    return raised[-1] if raised else _first_line(err)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit): \S")


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


# --------------------------------------------------------------------------------- the actors


class _ActorWriter(OutputWriter):
    """An actor's writer: the per-image files as the plain run writes them; ``jsonl`` records are
    kept for the driver, which alone appends to ``results.jsonl``."""

    def __init__(self, out: PurePath, fmt: str, annotate: bool, store: Storage):  # noqa: D107 - no records are read
        self.out, self.fmt, self.annotate, self.store = out, fmt, annotate, store
        self.records: dict[str, str] = {}

    def start(self, todo) -> None:
        pass

    def record(self, job: ImageJob, page: "PageResult") -> None:
        if self.fmt == "jsonl":
            self.records[job.rel] = page.to_json(indent=None)

    def close(self) -> None:
        pass


class _Worker:
    """A Ray Data actor: loads the models once, then reads batches of jobs."""

    def __init__(self, out: str, out_store: Storage, stores: list[Storage], fmt: str, annotate: bool,
                 make_reader: Callable[[], "Reader"], threads: int):
        import torch

        torch.set_num_threads(max(1, threads))
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, threads)))
        self.reader = make_reader().load_models()
        self.writer = _ActorWriter(out_store.path(out), fmt, annotate, out_store)
        self.stores = stores
        self.cpu_seconds = 0.0

    def __call__(self, rows: dict[str, Any]) -> dict[str, list]:
        jobs = []
        for source, rel, index in zip(rows["source"], rows["rel"], rows["store"]):
            store = self.stores[int(index)]
            jobs.append(ImageJob(store.path(str(source)), str(rel), None, store))
        reasons: dict[str, str] = {}
        lines: dict[str, int] = {}
        notices: dict[str, str] = {}
        self.writer.records.clear()
        cpu_start = time.process_time()
        process_images(self.reader, jobs, self.writer, 1,
                       lambda job, reason: reasons.__setitem__(job.rel, reason),
                       lambda job, page: lines.__setitem__(job.rel, len(page.lines)),
                       lambda job, message: notices.__setitem__(job.rel, message))
        self.cpu_seconds += time.process_time() - cpu_start
        for job in jobs:  # every job gets an outcome
            if job.rel not in lines and job.rel not in reasons:
                reasons[job.rel] = "processing failed: no outcome"
        return {
            "source": [job.name for job in jobs], "rel": [job.rel for job in jobs],
            "lines": [lines.get(job.rel, 0) for job in jobs], "reason": [reasons.get(job.rel, "") for job in jobs],
            "record": [self.writer.records.get(job.rel, "") for job in jobs],
            "notice": [notices.get(job.rel, "") for job in jobs],
            "worker": [os.getpid()] * len(jobs), "peak_rss_mb": [_peak_rss_mb()] * len(jobs),
            "cpu_seconds": [self.cpu_seconds] * len(jobs),
        }


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
