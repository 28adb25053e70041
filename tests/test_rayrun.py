"""`scenetext run --ray` on a local Ray cluster started here: the same texts, failures and outputs
as the plain run on real photos with broken files mixed in, for local paths, ``file://`` URIs and
a pyarrow filesystem that is not the local disk; and a run whose driver is killed half-way
resumes to the same outputs."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner

from conftest import DATA, ROOT
from scenetext import cli

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'scenetext[ray]')")
pytestmark = pytest.mark.slow  # a local cluster and real models: a few minutes on 2 busy cores

BROKEN = {"empty.jpg": b"", "notes.png": b"this is not an image\n", "header.png": b"\x89PNG\r\n\x1a\n" + bytes(64)}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 << 20, logging_level="ERROR",
             log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """12 real photos (ICDAR 2015 test images from ../shared, or the examples) and three broken files."""
    folder = tmp_path_factory.mktemp("ray") / "photos"
    folder.mkdir()
    shared = DATA / "det" / "ic15_test" / "images"
    sources = sorted(shared.glob("*.jpg"))[:12] if shared.is_dir() else sorted((ROOT / "examples").glob("*.jpg"))
    for source in sources:
        shutil.copy(source, folder / source.name)
    for name, data in BROKEN.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def plain(photos, tmp_path_factory) -> Path:
    """The outputs of a plain (uninterrupted, no Ray) run over ``photos``."""
    out = tmp_path_factory.mktemp("plain") / "out"
    code, errors = run(photos, "-o", out)
    assert code == 1, errors
    return out


def run(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, ["run", *map(str, args), "-q"])
    return result.exit_code, result.stderr


def texts(out: Path) -> dict[str, list[str]]:
    return {p.name: [line["text"] for line in json.loads(p.read_text())["lines"]] for p in sorted(out.glob("*.json"))
            if p.name != "summary.json"}


def summary(out: Path) -> dict:
    data = json.loads((out / "summary.json").read_text())
    return {key: data[key] for key in ("images", "processed", "skipped", "failed", "lines")} | {
        "failures": sorted((Path(f["path"]).name, f["reason"]) for f in data["failures"])}


def test_ray_run_matches_the_plain_run_and_resumes(cluster, photos, plain, tmp_path):
    on_ray = tmp_path / "ray"
    code, errors = run(f"file://{photos}", "-o", f"file://{on_ray}", "--ray", "--ray-workers", "2")  # = local paths
    assert code == 1, errors
    assert texts(on_ray) == texts(plain) and len(texts(plain)) == len(list(photos.glob("*"))) - len(BROKEN)
    assert summary(on_ray) == summary(plain)
    assert [name for name, _ in summary(on_ray)["failures"]] == sorted(BROKEN) and ("empty.jpg", "empty file") in \
        summary(on_ray)["failures"]
    assert sorted(p.name for p in on_ray.glob("*.annotated.jpg")) == sorted(p.name for p in plain.glob("*.annotated.jpg"))
    assert (on_ray / "report.html").is_file()

    # cut half-way: half the outputs gone, a temporary file of a killed write left behind
    first = texts(on_ray)
    gone = sorted(first)[::2]
    for name in gone:
        (on_ray / name).unlink()
        (on_ray / name.replace(".json", ".annotated.jpg")).unlink()
    (on_ray / f".{gone[0]}.abcd1234.tmp").write_text('{"half": ')
    code, errors = run(photos, "-o", on_ray, "--ray", "--skip-existing")
    assert code == 1, errors
    assert texts(on_ray) == first and not list(on_ray.glob("*.tmp"))
    resumed = summary(on_ray)
    assert (resumed["processed"], resumed["skipped"]) == (len(gone), len(first) - len(gone))


def test_ray_jsonl_records(cluster, photos, tmp_path):
    out = tmp_path / "out"
    names = sorted(p.name for p in photos.glob("*.jpg") if p.stat().st_size)[:3]
    files = [photos / name for name in names]
    code, errors = run(*files, "-o", out, "--ray", "--format", "jsonl", "--no-annotate")
    assert code == 0, errors
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(Path(r["path"]).name for r in records) == names
    assert not list(out.glob("*.json")) or [p.name for p in out.glob("*.json")] == ["summary.json"]


def test_ray_reads_and_writes_a_filesystem_that_is_not_the_local_disk(cluster, photos, plain, tmp_path):
    """Through pyarrow's filesystem interface, as for s3:// (here fsspec's local filesystem, which
    every actor process sees): listed by the driver, read as bytes and written as whole objects by
    the actors."""
    fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed")
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    from scenetext.batch import REPORT_NOT_LOCAL, BatchRun
    from scenetext.rayrun import run_on_ray
    from scenetext.storage import ArrowStorage, Location

    store = ArrowStorage(PyFileSystem(FSSpecHandler(fsspec.filesystem("file"))), "fsspec://")
    out = tmp_path / "out"
    batch = BatchRun([Location(store, PurePosixPath(photos))], Location(store, PurePosixPath(out)))
    assert {job.store for job in batch.jobs} == {store}
    warnings = []
    result = run_on_ray(batch, functools.partial(cli.make_reader), workers=2, on_report_error=warnings.append)
    assert texts(out) == texts(plain)
    assert summary(out) == summary(plain)
    assert all(f.path.startswith(f"fsspec://{photos}/") for f in result.failures)
    assert sorted(p.name for p in out.glob("*.annotated.jpg")) == sorted(p.name for p in plain.glob("*.annotated.jpg"))
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # one whole write each, no temporary files
    assert warnings == [f"fsspec://{out}: {REPORT_NOT_LOCAL}"] and not (out / "report.html").exists()
    assert {"path": f"fsspec://{out}", "message": REPORT_NOT_LOCAL} in json.loads((out / "summary.json").read_text())[
        "notices"]


# --------------------------------------------------------------------------------- killed half-way


def comparable(path: Path) -> dict:
    page = json.loads(path.read_text())
    page.pop("timings_ms")
    return page


def leaves(doc, at: tuple = ()):
    """``(path, value)`` for every value in a JSON document, containers as ``(path, their type)``."""
    if isinstance(doc, (dict, list)):
        yield at, type(doc)
        for key, value in (sorted(doc.items()) if isinstance(doc, dict) else enumerate(doc)):
            yield from leaves(value, (*at, key))
    else:
        yield at, doc


def same_page(a, b, tol: float = 1e-3) -> bool:
    """Equal JSON documents, floats within ``tol`` (batches of different make-up round differently)."""
    def close(x, y) -> bool:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
        return math.isclose(x, y, abs_tol=tol) if numbers else type(x) is type(y) and x == y

    ours, theirs = list(leaves(a)), list(leaves(b))
    return [at for at, _ in ours] == [at for at, _ in theirs] and all(
        close(x, y) for (_, x), (_, y) in zip(ours, theirs))


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def outputs(out: Path, names) -> dict[str, tuple[int, bytes]]:
    """``{file: (mtime_ns, bytes)}`` for the data files and annotated copies of the images ``names``."""
    files = [out / name for name in names] + [out / name.replace(".json", ".annotated.jpg") for name in names]
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in files if p.is_file()}


def test_a_ray_run_killed_half_way_resumes_to_the_same_outputs(cluster, photos, plain, tmp_path):
    """The driver (``python -m scenetext run ... --ray local``) is SIGKILLed once about half the
    photos' outputs exist, and the local cluster it started with it, as when its machine goes
    down (a driver killed alone takes its local cluster down within about two seconds, in which
    the actor may finish a few more photos; killing both at once makes "half-way" exact). Then
    ``--skip-existing`` finishes the run: outputs equal to an uninterrupted run's (timings aside),
    no temporary or half-written file, and nothing that was whole before the kill written again."""
    out = tmp_path / "out"
    good = len(texts(plain))
    command = [sys.executable, "-m", "scenetext", "run", str(photos), "-o", str(out), "-q", "--ray", "local",
               "--ray-workers", "1"]  # one actor: blocks of 8 and 4 photos, read one after the other
    with open(tmp_path / "stderr.txt", "w") as stderr:
        driver = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.monotonic() + 300
        while driver.poll() is None and len(texts(out) if out.is_dir() else {}) < good // 2:
            assert time.monotonic() < deadline, "the Ray run wrote no outputs in 300 s"
            time.sleep(0.02)
        cluster_processes = descendants(driver.pid)
        driver.send_signal(signal.SIGKILL)
        for pid in cluster_processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        driver.wait()
    assert driver.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()
    deadline = time.monotonic() + 30
    while any(map(alive, cluster_processes)) and time.monotonic() < deadline:
        time.sleep(0.1)

    whole = texts(out)
    before = outputs(out, whole)
    assert 0 < len(whole) < good, f"{len(whole)} of {good} photos done when the run was killed"

    code, errors = run(photos, "-o", out, "--ray", "--skip-existing")
    assert code == 1, errors
    assert outputs(out, whole) == before  # nothing whole before the kill was written again
    assert texts(out) == texts(plain)
    assert all(same_page(comparable(out / name), comparable(plain / name)) for name in texts(plain))
    assert sorted(p.name for p in out.glob("*.annotated.jpg")) == sorted(p.name for p in plain.glob("*.annotated.jpg"))
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    resumed = summary(out)
    assert (resumed["processed"], resumed["skipped"]) == (good - len(whole), len(whole))
    assert resumed["failures"] == summary(plain)["failures"]
    assert (out / "report.html").is_file()


def test_a_wrapped_remote_error_is_one_line():
    from scenetext.rayrun import root_reason

    remote = ("The actor died because of an error raised in its creation task, \x1b[36mray::MapWorker.__init__()"
              "\x1b[39m (pid=1)\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
              "ValueError: an inner one\n  File \"y.py\", line 2\n"
              "scenetext.checkpoint.ModelFileError: /m/ctpn.pt: model file not found\n")
    assert root_reason(RuntimeError(remote)) == "scenetext.checkpoint.ModelFileError: /m/ctpn.pt: model file not found"
    assert root_reason(RuntimeError("lost\nmore")) == "RuntimeError: lost"
