"""Batch runs with inputs and outputs on a filesystem pyarrow opens (scenetext.storage): an
fsspec memory filesystem stands in for an object store (no network). The same run on the local
disk is the reference: the same images listed and refused, the same outputs and failures, and
``skip_existing`` resumes from what is on that filesystem."""

from __future__ import annotations

import json
import uuid
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner

from helpers import BlobDetector, InkReader, dark_boxes_image
from scenetext import cli
from scenetext.batch import ANNOTATED_MARK, REPORT_NOT_LOCAL, BatchRun
from scenetext.imageio import encode_image
from scenetext.reader import Reader
from scenetext.storage import LOCAL, ArrowStorage, Location, StorageError, is_uri, locate, on_filesystem
from test_cli_run import bad_files, fake_models, photo  # noqa: F401 - fake_models is a fixture

pafs = pytest.importorskip("pyarrow.fs", reason="pyarrow is not installed (pip install 'scenetext[ray]')")
fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed")


@pytest.fixture
def memory():
    """``(fsspec memory filesystem, its ArrowStorage, a fresh root folder in it)``; emptied afterwards."""
    mem = fsspec.filesystem("memory")
    root = f"/t-{uuid.uuid4().hex}"
    yield mem, ArrowStorage(pafs.PyFileSystem(pafs.FSSpecHandler(mem)), "memory://"), root
    if mem.exists(root):
        mem.rm(root, recursive=True)


def upload(mem, local: Path, root: str) -> None:
    """Copy the files under ``local`` to ``root`` in the memory filesystem."""
    for path in sorted(local.rglob("*")):
        if path.is_file():
            mem.pipe(f"{root}/{path.relative_to(local).as_posix()}", path.read_bytes())


def tree(folder: Path) -> Path:
    """Photos, broken files, hidden ones, non-images, subfolders, and a clash of output names."""
    for name in ["a.jpg", "B.PNG", "sub/c.png", "sub/deeper/d.png", ".hidden.png", ".cache/e.png", "clash/a.jpg"]:
        photo(folder / "photos" / name, seed=len(name))
    (folder / "photos" / "notes.txt").write_text("not an image")
    (folder / "photos" / "z.jpg.annotated.jpg").write_bytes(b"someone's photo, named like our outputs")
    ours = encode_image("a.jpg", dark_boxes_image(), comment=ANNOTATED_MARK)  # as an earlier run wrote it
    (folder / "photos" / "a.jpg.annotated.jpg").write_bytes(ours)
    (folder / "words" / "notes.txt").parent.mkdir(parents=True)
    (folder / "words" / "notes.txt").write_text("no images in here")
    bad_files(folder / "photos" / "bad")
    return folder


def relative(text: str, root: str) -> str:
    return text.replace(root, "ROOT")


def listing(run: BatchRun, root: str) -> tuple[list, list]:
    return ([(job.rel, relative(job.name, root)) for job in run.jobs],
            [(relative(f.path, root), relative(f.reason, root)) for f in run.failures])


def test_a_folder_on_an_object_store_is_listed_by_the_local_rules(memory, tmp_path):
    mem, store, root = memory
    local = tree(tmp_path / "local")
    upload(mem, local, root)
    for recursive in (False, True):
        for out in ("out", "photos"):  # OUT apart, and OUT the input folder
            inputs = ["photos", "words", "photos/clash/a.jpg", "missing.jpg"]
            on_disk = BatchRun([local / name for name in inputs], local / out, recursive=recursive)
            remote = BatchRun([Location(store, PurePosixPath(f"{root}/{name}")) for name in inputs],
                              Location(store, PurePosixPath(f"{root}/{out}")), recursive=recursive)
            expected = listing(on_disk, str(local))
            assert listing(remote, f"memory://{root}") == expected
            rels = [rel for rel, _ in expected[0]]
            assert "z.jpg.annotated.jpg" in rels and ("a.jpg.annotated.jpg" in rels) == (out == "out")
            assert ("sub/deeper/d.png" in rels) == recursive and not any("hidden" in r or "e.png" in r for r in rels)
            reasons = dict(listing(remote, f"memory://{root}")[1])
            assert reasons["ROOT/missing.jpg"] == "file not found"
            assert reasons["ROOT/words"].startswith("no images found")
            if not recursive:  # (with --recursive the folder scan reaches that file first: it is read once)
                assert reasons["ROOT/photos/clash/a.jpg"] == \
                    "output name 'a.jpg' is already used by ROOT/photos/a.jpg"


def fake_reader() -> Reader:
    return Reader(BlobDetector(), InkReader(), min_confidence=0)


def outputs_of(files: dict[str, bytes]) -> dict[str, object]:
    """Output files by name: JSON without timings and input paths, other files as they are."""
    kept = {}
    for name, data in files.items():
        if name.endswith(".json") or name.endswith(".jsonl"):
            docs = [json.loads(line) for line in data.decode().splitlines() if line] if name.endswith(".jsonl") \
                else [json.loads(data)]
            for doc in docs:
                for key in ("timings_ms", "path", "seconds", "images_per_second", "notices"):
                    doc.pop(key, None)
                for failure in doc.get("failures", []):
                    failure["path"] = Path(failure["path"]).name
            kept[name] = docs
        else:
            kept[name] = data
    return kept


def local_files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".report" not in p.parts and p.name != "report.html"}


def memory_files(mem, root: str) -> dict[str, bytes]:
    return {path[len(root) + 1:]: mem.cat(path) for path in sorted(mem.find(root))}


@pytest.mark.parametrize("fmt", ["json", "jsonl", "txt"])
def test_a_run_on_an_object_store_writes_what_a_local_run_writes(memory, tmp_path, fmt):
    mem, store, root = memory
    local = tree(tmp_path / "local")
    upload(mem, local, f"{root}/in")
    (tmp_path / "out").mkdir()
    on_disk = BatchRun([local / "photos"], tmp_path / "out", recursive=True, fmt=fmt)
    expected = on_disk.run(fake_reader(), report=False)
    warnings = []
    remote = BatchRun([Location(store, PurePosixPath(f"{root}/in/photos"))],
                      Location(store, PurePosixPath(f"{root}/out")), recursive=True, fmt=fmt)
    summary = remote.run(fake_reader(), on_report_error=warnings.append)
    written = memory_files(mem, f"{root}/out")
    assert outputs_of(written) == outputs_of(local_files(tmp_path / "out"))
    assert (summary.processed, summary.lines) == (expected.processed, expected.lines) and summary.processed >= 5
    assert sorted(f.reason for f in summary.failures) == sorted(f.reason for f in expected.failures)
    assert not any(name.endswith(".tmp") for name in written)  # whole objects, no temporary files
    assert warnings == [f"memory://{root}/out: {REPORT_NOT_LOCAL}"] and "report.html" not in written
    notes = json.loads(written["summary.json"])["notices"]
    assert {"path": f"memory://{root}/out", "message": REPORT_NOT_LOCAL} in notes

    # resume: what is on the object store is skipped, what is missing there (and what failed) is read again
    def resume() -> BatchRun:
        return BatchRun([Location(store, PurePosixPath(f"{root}/in/photos"))],
                        Location(store, PurePosixPath(f"{root}/out")), recursive=True, fmt=fmt, skip_existing=True)

    failed = {f.path.removeprefix(f"memory://{root}/in/photos/") for f in summary.failures}
    assert {job.rel for job in resume().todo} == failed
    mem.rm(f"{root}/out/sub/c.png.annotated.jpg")
    again = resume()
    assert {job.rel for job in again.todo} == failed | {"sub/c.png"}
    resumed = again.run(fake_reader(), report=False)
    assert (resumed.processed, resumed.skipped) == (1, summary.processed - 1)
    assert outputs_of(memory_files(mem, f"{root}/out")).keys() == outputs_of(written).keys()
    if fmt == "jsonl":  # the record was replaced, not added again
        names = [json.loads(line)["name"] for line in mem.cat(f"{root}/out/results.jsonl").decode().splitlines()]
        assert sorted(names) == sorted(set(names)) and len(names) == summary.processed


def test_outputs_on_an_object_store_never_replace_other_files(memory, tmp_path):
    mem, store, root = memory
    photo(tmp_path / "photos" / "a.jpg")
    photo(tmp_path / "photos" / "b.png", seed=1)
    upload(mem, tmp_path / "photos", f"{root}/photos")
    mem.pipe(f"{root}/photos/summary", (tmp_path / "photos" / "b.png").read_bytes())  # named on the command line
    mem.pipe(f"{root}/photos/a.jpg.annotated.jpg", b"someone's photo")
    mem.pipe(f"{root}/photos/b.png.json", b'{"camera": "theirs"}')
    inputs = [Location(store, PurePosixPath(f"{root}/photos/{name}")) for name in ("", "summary")]
    run = BatchRun(inputs, Location(store, PurePosixPath(f"{root}/photos")))
    reasons = {Path(f.path).name: f.reason for f in run.failures}
    assert reasons == {
        "a.jpg": f"its output memory://{root}/photos/a.jpg.annotated.jpg would replace an input of this run",
        "b.png": f"memory://{root}/photos/b.png.json exists and holds JSON data that is not a scenetext result; "
                 "it is not replaced",
        "summary": "its output summary.json would replace the run's own summary.json"}
    assert [job.rel for job in run.jobs] == ["a.jpg.annotated.jpg"]  # someone's photo is read, not replaced
    theirs = [Location(store, PurePosixPath(f"{root}/photos/a.jpg.annotated.jpg"))]
    out = Location(store, PurePosixPath(f"{root}/out"))
    assert BatchRun(theirs, out).failures == []
    mem.pipe(f"{root}/out/a.jpg.annotated.jpg.annotated.jpg", b"not ours either")
    (refused,) = BatchRun(theirs, out).failures
    assert refused.reason == (f"memory://{root}/out/a.jpg.annotated.jpg.annotated.jpg exists and is not an annotated "
                              "copy written by scenetext; it is not replaced")


def test_an_image_on_an_object_store_fails_with_the_local_reasons(memory, tmp_path, monkeypatch):
    mem, store, root = memory
    expected = bad_files(tmp_path / "bad")
    upload(mem, tmp_path / "bad", root)
    for name, reason in expected.items():
        local = BatchRun([tmp_path / "bad" / name], tmp_path / "out").run(fake_reader(), report=False)
        remote = BatchRun([Location(store, PurePosixPath(f"{root}/{name}"))],
                          Location(store, PurePosixPath(f"{root}/out"))).run(fake_reader(), report=False)
        assert [f.reason for f in remote.failures] == [f.reason for f in local.failures]
        assert remote.failures[0].reason.startswith(reason) and remote.failures[0].path == f"memory://{root}/{name}"
    monkeypatch.setattr("scenetext.storage.MAX_OBJECT_BYTES", 100)
    photo(tmp_path / "big" / "big.png")
    upload(mem, tmp_path / "big", f"{root}/big")
    (failure,) = BatchRun([Location(store, PurePosixPath(f"{root}/big/big.png"))],
                          Location(store, PurePosixPath(f"{root}/out"))).run(fake_reader(), report=False).failures
    assert failure.reason.startswith("file too large to read (") and "\n" not in failure.reason


def test_uris_and_paths_are_told_apart(tmp_path):
    assert locate(f"file://{tmp_path}") == Location(LOCAL, tmp_path)
    assert locate(str(tmp_path)) == Location(LOCAL, tmp_path) and locate(tmp_path).store is LOCAL
    sub = on_filesystem(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "photos", "sub://")
    assert sub == Location(LOCAL, tmp_path / "photos")  # a local filesystem in any wrapping is the local disk
    mock = locate("mock:///bucket/photos")
    assert isinstance(mock.store, ArrowStorage) and str(mock) == "mock:///bucket/photos"
    assert not is_uri("photos/a.jpg") and not is_uri("a:b.jpg") and is_uri("s3://bucket/a.jpg")
    with pytest.raises(StorageError, match=r"^nosuch://x: cannot open this location \(.*\)$"):
        locate("nosuch://x")


def test_the_cli_reads_and_writes_uris_as_it_does_paths(fake_models, tmp_path):
    for i in range(3):
        photo(tmp_path / "photos" / f"p{i}.png", seed=i)
    bad_files(tmp_path / "photos")
    plain = CliRunner().invoke(cli.main, ["run", str(tmp_path / "photos"), "-o", str(tmp_path / "plain"), "-q"])
    uris = CliRunner().invoke(cli.main, ["run", f"file://{tmp_path}/photos", "-o", f"file://{tmp_path}/uris", "-q"])
    assert plain.exit_code == uris.exit_code == 1 and plain.stderr == uris.stderr
    assert outputs_of(local_files(tmp_path / "uris")) == outputs_of(local_files(tmp_path / "plain"))
    assert (tmp_path / "uris" / "report.html").is_file()
    made = len(fake_models)
    for args, message in [(["nosuch://bucket/x"], "nosuch://bucket/x: cannot open this location"),
                          (["mock:///nothing/here"], "mock:///nothing/here: does not exist"),
                          ([str(tmp_path / "photos"), "-o", "nosuch://out"], "nosuch://out: cannot open")]:
        result = CliRunner().invoke(cli.main, ["run", *args])
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert len(fake_models) == made  # refused before any model is made


def test_a_local_run_keeps_its_os_checks(tmp_path):
    """The local storage refuses what pyarrow's local filesystem would follow or open."""
    import os

    folder = tmp_path / "photos"
    photo(folder / "a.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    run = BatchRun([f"file://{folder}"], tmp_path / "out", recursive=True)
    assert [job.rel for job in run.jobs] == ["a.png"]
    assert [(Path(f.path).name, f.reason) for f in run.failures] == [("pipe.png", "not a regular file (FIFO), not read")]


def test_an_object_store_is_listed_once_not_asked_once_per_image(memory, tmp_path):
    mem, _, root = memory
    asked = []

    class Counting(pafs.FSSpecHandler):
        def get_file_info(self, paths):
            asked.extend(paths)
            return super().get_file_info(paths)

    store = ArrowStorage(pafs.PyFileSystem(Counting(mem)), "memory://")
    data = photo(tmp_path / "p.png").read_bytes()
    for i in range(40):
        mem.pipe(f"{root}/photos/{i // 10}/p{i}.png", data)
    photos, out = Location(store, PurePosixPath(f"{root}/photos")), Location(store, PurePosixPath(f"{root}/out"))
    run = BatchRun([photos], out, recursive=True)
    assert len(run.todo) == 40 and len(asked) <= 2  # is the input a folder; no question per image or output
    run.run(fake_reader(), report=False)
    asked.clear()
    again = BatchRun([photos], out, recursive=True, skip_existing=True)
    assert again.todo == [] and len(asked) <= 2
