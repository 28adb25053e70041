"""`make bench-ray`: images/s over the same photos for the plain run and for `--ray` with 1 and 2
workers, in one process, with each Ray worker's peak memory.

    python benchmarks/bench_ray.py [-n 100] [--out BENCHMARKS.md]

The photos are the 1280x720 ICDAR 2015 test images of ../shared (used only for timing) or, without
them, synthetic scenes. Each run writes its outputs to a fresh temporary folder. The plain run is
timed as `scenetext run` reports it (models loaded before the clock starts), with torch's
default threads and with one; a Ray run's end-to-end figure includes starting its actors and loading their models,
and its steady figure counts the images between the first and the last outcome. The cluster
(num_cpus = the workers asked for) is started once, before the Ray runs, and not timed. With
--out, the table replaces the block between `<!-- bench-ray -->` and `<!-- /bench-ray -->` in
that file (appended when absent).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _photos  # noqa: E402
from peers import write_section  # noqa: E402

BEGIN, END = "<!-- bench-ray -->", "<!-- /bench-ray -->"


def plain_run(photos: list[Path], threads: int | None = None) -> dict:
    """The plain run, with torch's default threads or ``threads``."""
    import torch

    from scenetext.batch import BatchRun
    from scenetext.reader import Reader

    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    try:
        reader = Reader().load_models()
        with tempfile.TemporaryDirectory(prefix="bench-plain-") as out:
            cpu = time.process_time()
            summary = BatchRun(photos, Path(out)).run(reader, report=False)
            cpu = time.process_time() - cpu
    finally:
        torch.set_num_threads(default)
    name = f"plain run (scenetext run), {threads or default} torch thread{'s' if (threads or default) > 1 else ''}"
    return {"name": name, "images": summary.processed, "seconds": summary.seconds,
            "rate": summary.images_per_second, "steady": None, "memory": None, "cpu": cpu / summary.processed}


def ray_run(photos: list[Path], workers: int) -> dict:
    from scenetext.batch import BatchRun
    from scenetext.reader import Reader
    from scenetext.rayrun import run_on_ray

    arrivals: list[float] = []
    memory: dict[int, float] = {}
    cpu: dict[int, float] = {}

    def seen(outcome) -> None:
        arrivals.append(time.perf_counter())
        memory[outcome.worker] = max(memory.get(outcome.worker, 0.0), outcome.peak_rss_mb)
        cpu[outcome.worker] = max(cpu.get(outcome.worker, 0.0), outcome.cpu_seconds)

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as out:
        summary = run_on_ray(BatchRun(photos, Path(out)), functools.partial(Reader), workers=workers, report=False,
                             on_outcome=seen)
    steady = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else None
    return {"name": f"--ray, {workers} worker{'s' if workers > 1 else ''} (1 CPU each)", "images": summary.processed,
            "seconds": summary.seconds, "rate": summary.images_per_second, "steady": steady,
            "memory": max(memory.values()) if memory else None,
            "cpu": sum(cpu.values()) / summary.processed if summary.processed else None}


def table(rows: list[dict], n: int) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    lines = [BEGIN, "## Ray (`make bench-ray`)", "",
             f"{n} photos of 1280x720, one process, machine: {machine}. End to end: images / seconds of the "
             "run (for Ray: with starting the actors and loading their models); steady: between the first "
             "and the last image's outcome; CPU per photo: CPU time of every thread of the process(es) "
             "reading the photos (for Ray: of the actors, while reading), per photo.", "",
             "| run | images | seconds | images/s end to end | images/s steady | CPU per photo | "
             "peak memory per worker |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        steady = f"{r['steady']:.2f}" if r["steady"] else ""
        memory = f"{r['memory']:.0f} MB" if r["memory"] else ""
        cpu = f"{r['cpu'] * 1000:.0f} ms" if r["cpu"] else ""
        lines.append(f"| {r['name']} | {r['images']} | {r['seconds']:.1f} | {r['rate']:.2f} | {steady} | {cpu} | "
                     f"{memory} |")
    return "\n".join(lines + [END])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100, help="photos")
    ap.add_argument("--out", type=Path, help="Markdown file to put the table in")
    args = ap.parse_args()
    photos = _photos(args.n)
    rows = []
    for threads in (None, 1):
        rows.append(plain_run(photos, threads))
        print(rows[-1], flush=True)
    import ray

    from scenetext.rayrun import OBJECT_STORE_BYTES

    ray.init(num_cpus=2, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False, configure_logging=False)
    try:
        for workers in (1, 2):
            rows.append(ray_run(photos, workers))
            print(rows[-1], flush=True)
    finally:
        ray.shutdown()
    block = table(rows, len(photos))
    print(block)
    if args.out:
        write_section(args.out, block, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
