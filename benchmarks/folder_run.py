"""The folder scenario of `scenetext run` at full size (`make check-folder`).

A folder of N photos (default 500: the ICDAR 2015 test photos from ../shared, used only as
pictures, or synthetic scenes without ../shared) with five broken files mixed in:

1. one uninterrupted run: every good photo processed, the five failures reported, exit status 1;
2. a second run into another folder, killed (SIGKILL) once about half the photos are written;
3. the same command again with ``--skip-existing``: it must finish with outputs equal to run 1
   (timings aside), leave the files written before the kill untouched (nothing processed twice),
   and leave no temporary or half-written file behind.

``--format jsonl`` runs the same checks on ``OUT/results.jsonl``: one record per photo, keyed by
its name; the records written before the kill are kept as they are and none is written twice.

Prints what it checks and exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _photos

BROKEN = {
    "empty.jpg": b"",
    "not-an-image.jpg": b"these are not the pixels you are looking for\n",
    "garbage.png": os.urandom(4096),
    "header-only.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
}


def make_folder(folder: Path, n: int) -> int:
    """Copy ``n`` photos into ``folder`` and add five broken files; returns the good count."""
    photos = _photos(n)
    for p in photos:
        shutil.copy(p, folder / p.name)
    for name, data in BROKEN.items():
        (folder / name).write_bytes(data)
    truncated = photos[0].read_bytes()
    (folder / "truncated.jpg").write_bytes(truncated[: len(truncated) // 3])
    return len(photos)


def records(out: Path, fmt: str) -> dict[str, str]:
    """The outputs written so far, by name: each ``<name>.json`` file's text, or each whole line of
    ``results.jsonl`` (a torn last line left out)."""
    if fmt == "json":
        return {p.name: p.read_text() for p in out.glob("*.json") if p.name != "summary.json"}
    path = out / "results.jsonl"
    lines = path.read_text().split("\n")[:-1] if path.is_file() else []
    return {json.loads(line)["name"]: line for line in lines}


def count_written(out: Path, fmt: str) -> int:
    """How many photos' data files (or results.jsonl lines) exist so far."""
    if fmt == "json":
        return sum(1 for p in out.glob("*.json") if p.name != "summary.json")
    path = out / "results.jsonl"
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def run(folder: Path, out: Path, *extra: str, fmt: str = "json", kill_after: int | None = None) -> tuple[int, float]:
    """``scenetext run folder -o out --format fmt``; with ``kill_after``, SIGKILL once that many
    photos' data are written."""
    cmd = [sys.executable, "-m", "scenetext.cli", "run", str(folder), "-o", str(out), "--quiet", "--format", fmt,
           *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    if kill_after is None:
        _, err = proc.communicate()
        sys.stderr.write(err)
        return proc.returncode, time.perf_counter() - start
    while proc.poll() is None and count_written(out, fmt) < kill_after:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return proc.returncode, time.perf_counter() - start


def comparable(text: str) -> dict:
    page = json.loads(text)
    page.pop("timings_ms")
    return page


def same_page(a, b, tol: float = 1e-3) -> bool:
    """Equal JSON values, floats within ``tol`` (batches of different make-up round differently)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, abs_tol=tol)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_page(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same_page(x, y, tol) for x, y in zip(a, b))
    return a == b


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=500, help="good photos in the folder")
    ap.add_argument("--format", dest="fmt", choices=("json", "jsonl"), default="json",
                    help="output format of the runs (default json)")
    args = ap.parse_args(argv)
    failed = []

    def check(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAILED'}] {what}", flush=True)
        if not ok:
            failed.append(what)

    with tempfile.TemporaryDirectory(prefix="scenetext-folder-") as tmp:
        tmp = Path(tmp)
        folder, full, resumed = tmp / "photos", tmp / "full", tmp / "resumed"
        folder.mkdir()
        good = make_folder(folder, args.n)
        fmt = args.fmt
        print(f"folder: {good} photos + {len(BROKEN) + 1} broken files; format {fmt}", flush=True)

        code, seconds = run(folder, full, fmt=fmt)
        summary = json.loads((full / "summary.json").read_text())
        print(f"1. uninterrupted run: exit {code}, {seconds:.0f} s, {summary['processed']} processed, "
              f"{summary['failed']} failed, {summary['images_per_second']} images/s", flush=True)
        check(code == 1, "exit status 1")
        check(summary["processed"] == good and count_written(full, fmt) == len(records(full, fmt)) == good,
              "every good photo processed (one JSON each, or one results.jsonl record each)")
        check(sorted(Path(f["path"]).name for f in summary["failures"]) == sorted([*BROKEN, "truncated.jpg"]),
              "exactly the broken files reported as failures")

        code, seconds = run(folder, resumed, fmt=fmt, kill_after=good // 2)
        before = {p.name: p.stat().st_mtime_ns for p in resumed.glob("*.json")}
        before_records = records(resumed, fmt)
        print(f"2. second run killed after {seconds:.0f} s: exit {code}, {len(before_records)} photos' data written",
              flush=True)
        check(code == -signal.SIGKILL and 0 < len(before_records) < good, "killed half-way")

        code, seconds = run(folder, resumed, "--skip-existing", fmt=fmt)
        summary = json.loads((resumed / "summary.json").read_text())
        print(f"3. re-run with --skip-existing: exit {code}, {seconds:.0f} s, {summary['processed']} processed, "
              f"{summary['skipped']} skipped, {summary['failed']} failed", flush=True)
        check(code == 1, "exit status 1")
        check(summary["skipped"] == len(before_records) and summary["processed"] == good - len(before_records),
              "only the photos without output processed")
        after = records(resumed, fmt)
        check(all((resumed / name).stat().st_mtime_ns == mtime for name, mtime in before.items())
              and all(after.get(name) == text for name, text in before_records.items()),
              "outputs written before the kill left untouched")
        check(count_written(resumed, fmt) == len(after), "no photo's data written twice")
        first = records(full, fmt)
        check(sorted(first) == sorted(after) and all(same_page(comparable(first[n]), comparable(after[n])) for n in first),
              "same outputs as the uninterrupted run (timings aside)")
        check(len(list(resumed.glob("*.annotated.jpg"))) == good, "every annotated image present")
        leftovers = [p.name for p in resumed.iterdir() if p.name.startswith(".") and p.name != ".report"]
        check(not leftovers, f"no temporary files left ({len(leftovers)} found{': ' if leftovers else ''}"
                             f"{', '.join(leftovers[:3])})")
    print("all checks passed" if not failed else f"{len(failed)} check(s) failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
