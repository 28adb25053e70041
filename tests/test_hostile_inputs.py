"""Hostile and odd inputs: file-system traps, names that forge output, results that must not be
lost, and options the API must refuse like the CLI. Every test makes its own files."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import BlobDetector, InkReader, dark_boxes_image
from scenetext import batch, cli, imageio, storage
from scenetext.imageio import ImageLoadError, decode_image, load_image
from scenetext.reader import Reader
from scenetext.results import Failure, validate_result
from test_cli_run import fake_models, photo, run  # noqa: F401 - fake_models is a fixture

LOOP = os.strerror(errno.ELOOP)
NO_SPACE = os.strerror(errno.ENOSPC)


def run_within(seconds: float, *args):
    """``scenetext run ARGS`` that must finish within ``seconds`` (a FIFO opened blocking never would)."""
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", run(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"scenetext run {args} hangs"
    return box["result"]


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


# --------------------------------------------------------------------------- file-system objects


def test_symlink_loops_are_reported_and_the_run_goes_on(fake_models, tmp_path):
    photos = tmp_path / "photos"
    photo(photos / "good.png")
    (photos / "self.jpg").symlink_to("self.jpg")
    (photos / "a.png").symlink_to("b.png")
    (photos / "b.png").symlink_to("a.png")
    (photos / "sub").mkdir()
    (photos / "sub" / "up").symlink_to("..")  # a folder loop: folder links are not followed
    (photos / "twice.png").symlink_to("good.png")  # the same file by a second name: read once
    out = tmp_path / "out"
    result = run_within(60, photos, "-o", out, "--recursive")
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = error_lines(result)
    assert sorted(line.split(": ")[1].rsplit("/", 1)[1] for line in errors) == ["a.png", "b.png", "self.jpg"]
    assert all(LOOP in line for line in errors)
    summary = summary_of(out)
    assert (summary["processed"], summary["failed"]) == (1, 3)
    validate_result(json.loads((out / "good.png.json").read_text()))
    assert not (out / "twice.png.json").exists()


def test_fifo_socket_and_device_are_reported_never_opened(fake_models, tmp_path):
    photos = tmp_path / "photos"
    photo(photos / "good.png")
    os.mkfifo(photos / "pipe.jpg")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(photos / "sock.png"))
    (photos / "zero.jpg").symlink_to("/dev/zero")
    out = tmp_path / "out"
    try:
        result = run_within(60, photos, "-o", out)
        named = run_within(60, photos / "pipe.jpg", "-o", tmp_path / "out2")
    finally:
        server.close()
    assert result.exit_code == 1
    reasons = {line.split(": ")[1].rsplit("/", 1)[1]: line.split(": ", 2)[2] for line in error_lines(result)}
    assert reasons == {"pipe.jpg": "not a regular file (FIFO), not read",
                       "sock.png": "not a regular file (socket), not read",
                       "zero.jpg": "not a regular file (character device), not read"}
    assert summary_of(out)["processed"] == 1
    assert named.exit_code == 1 and "pipe.jpg: not a regular file (FIFO)" in named.stderr


def test_a_fifo_swapped_in_after_the_check_is_not_waited_on(tmp_path, monkeypatch):
    fifo = tmp_path / "late.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageLoadError, match="not a regular file .FIFO."):
        load_image(fifo)
    monkeypatch.setattr(imageio, "check_regular_file", lambda path: None)  # as if it changed after the check
    box = {}

    def load():
        try:
            load_image(fifo)
        except ImageLoadError as err:
            box["error"] = err

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "opening the FIFO blocked"
    assert "FIFO" in str(box["error"])


def test_unreadable_subfolder_fails_the_run(fake_models, tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photo(photos / "top.png")
    photo(photos / "locked" / "inner.png")
    locked = photos / "locked"
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads any folder: make listing this one fail as it would for a user
        real_scandir = os.scandir

        def scandir(path="."):
            if Path(path) == locked:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        result = run(photos, "-o", tmp_path / "out", "--recursive")
    finally:
        locked.chmod(0o755)
    assert result.exit_code == 1
    (line,) = error_lines(result)
    assert str(locked) in line and "cannot read folder" in line and os.strerror(errno.EACCES) in line
    assert summary_of(tmp_path / "out")["processed"] == 1


# --------------------------------------------------------------------------- Reader.read_many


def twelve_images(tmp_path: Path, bad: dict[int, bytes]) -> list[Path]:
    paths = []
    for i in range(12):
        path = tmp_path / f"img{i:02d}.png"
        if i in bad:
            path.write_bytes(bad[i])
        else:
            image = dark_boxes_image()
            image[110, : 10 + i] = 200
            Image.fromarray(image).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def ink_reader():
    return Reader(BlobDetector(), InkReader(), min_confidence=0, bound_memory=False)


def test_read_many_keeps_every_good_result(ink_reader, tmp_path):
    paths = twelve_images(tmp_path, {5: b""})
    good = [str(p) for i, p in enumerate(paths) if i != 5]

    assert [page.path for page in ink_reader.read_many(paths, on_error="skip")] == good

    returned = list(ink_reader.read_many(paths, on_error="return"))
    assert [getattr(r, "path") for r in returned] == [str(p) for p in paths]
    failure = returned[5]
    assert isinstance(failure, Failure) and failure.reason == "empty file"
    assert isinstance(failure.error, ImageLoadError)
    assert all(len(page.lines) == 2 for i, page in enumerate(returned) if i != 5)

    seen = []
    with pytest.raises(ImageLoadError, match="img05.png: empty file"):
        for page in ink_reader.read_many(paths):
            seen.append(page.path)
    assert seen == good[:5]  # the good images of the bad one's batch before it are not lost
    with pytest.raises(ValueError, match="on_error"):
        next(ink_reader.read_many(paths, on_error="ignore"))


def test_read_many_isolates_an_image_the_models_fail_on(recognizer, tmp_path):
    class Fussy(BlobDetector):
        def detect(self, rgb, level="line"):
            if rgb.shape[1] == 77:
                raise RuntimeError("cannot handle width 77")
            return super().detect(rgb, level)

    reader = Reader(Fussy(), InkReader(), min_confidence=0, bound_memory=False)
    images = [dark_boxes_image(), np.full((40, 77, 3), 255, np.uint8), dark_boxes_image(), b"junk"]
    results = list(reader.read_many(images, on_error="return"))
    assert [type(r).__name__ for r in results] == ["PageResult", "Failure", "PageResult", "Failure"]
    assert results[1].reason == "processing failed: RuntimeError: cannot handle width 77"
    assert results[1].path == "<ndarray>" and results[3].path == "<bytes>"
    assert results[3].to_dict() == {"path": "<bytes>", "reason": results[3].reason}


# --------------------------------------------------------------------------- results that must not be lost


@contextlib.contextmanager
def tiny_disk(folder: Path):
    """``folder`` as a 64 KiB tmpfs when this process may mount one; yields whether it is."""
    folder.mkdir(parents=True)
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` but for about ``leave`` bytes; returns the filler file."""
    filler = folder / ".filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while f.write(b"\0" * 4096):
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def test_full_disk_in_jsonl_mode_is_one_error_per_image(fake_models, tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    for i in range(6):
        photo(photos / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    with tiny_disk(out) as mounted:
        if mounted:
            filler = fill(out, leave=4096)  # room for a few records, and not for the summary
        else:  # a fault-injected writer: records 3 onwards and the summary meet a full disk
            real_append, appended = storage._append, []

            def append(fd, data):
                if len(appended) >= 2:
                    os.write(fd, data[: len(data) // 2])  # a torn record, as a short write leaves
                    raise OSError(errno.ENOSPC, NO_SPACE)
                appended.append(data)
                real_append(fd, data)

            def no_space(path, data):
                raise OSError(errno.ENOSPC, NO_SPACE)

            monkeypatch.setattr(storage, "_append", append)
            monkeypatch.setattr(imageio, "atomic_write_bytes", no_space)
        result = run(photos, "-o", out, "--format", "jsonl", "--no-annotate", "--jobs", "1")
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        errors = error_lines(result)
        written = (out / "results.jsonl").read_text().splitlines()
        assert 0 < len(written) < 6
        assert [json.loads(line)["name"] for line in written] == [f"p{i}.png" for i in range(len(written))]
        image_errors = [line for line in errors if "summary.json" not in line]
        assert len(image_errors) == 6 - len(written)
        assert all(f"cannot write outputs: {NO_SPACE}" in line for line in image_errors)
        assert any("summary.json: cannot write the run summary" in line and NO_SPACE in line for line in errors)

        if mounted:
            filler.unlink()
        else:
            monkeypatch.undo()
            monkeypatch.setattr(cli, "make_reader", lambda **o: Reader(BlobDetector(), InkReader(), min_confidence=0))
        result = run(photos.resolve(), "-o", out, "--format", "jsonl", "--no-annotate", "--skip-existing")
        assert result.exit_code == 0, result.output
        records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert sorted(r["name"] for r in records) == [f"p{i}.png" for i in range(6)]
        assert summary_of(out)["processed"] == 6 - len(written)


def test_jsonl_resume_under_another_name_never_duplicates(fake_models, tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    for i in range(3):
        photo(photos / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    assert run("photos", "-o", out, "--format", "jsonl", "--no-annotate").exit_code == 0
    with open(out / "results.jsonl", "a") as f:
        f.write('{"name": "p3.png", "path": "photos/p3.png", "wid')  # what a kill mid-write leaves
    photo(photos / "p3.png", seed=3)
    result = run(photos.resolve(), "-o", out, "--format", "jsonl", "--no-annotate", "--skip-existing")
    assert result.exit_code == 0
    assert summary_of(out)["processed"] == 1
    names = [json.loads(line)["name"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert names == ["p0.png", "p1.png", "p2.png", "p3.png"]
    assert run(photos, "-o", out, "--format", "jsonl", "--no-annotate").exit_code == 0  # all read again
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["name"] for r in records) == names
    for record in records:
        validate_result(record)


def test_summary_on_a_full_disk_is_one_error(fake_models, tmp_path, monkeypatch):
    image = photo(tmp_path / "p.png")
    out = tmp_path / "out"
    with tiny_disk(out) as mounted:
        if mounted:
            run(image, "-o", out, "--no-annotate")  # the outputs fit ...
            (out / "summary.json").unlink()
            fill(out, leave=0)  # ... then the disk is full
        else:
            monkeypatch.setattr(imageio, "atomic_write_bytes", lambda *a, **k: (_ for _ in ()).throw(
                OSError(errno.ENOSPC, NO_SPACE)))
        result = run(image, "-o", out, "--no-annotate")
    assert result.exit_code == 1 and "Traceback" not in result.output
    *image_errors, last = error_lines(result)
    assert last.startswith(f"error: {out / 'summary.json'}: cannot write the run summary") and NO_SPACE in last
    assert all(f"cannot write outputs: {NO_SPACE}" in line for line in image_errors)  # the photo's JSON did not fit


def test_outputs_never_replace_inputs_or_other_outputs(fake_models, tmp_path):
    photos = tmp_path / "photos"
    photo(photos / "a.jpg")
    theirs = photo(photos / "a.jpg.annotated.jpg", seed=1)  # someone's photo with our output's name
    mine = theirs.read_bytes()
    sidecar = photos / "b.png.json"
    photo(photos / "b.png", seed=2)
    sidecar.write_text('{"title": "holiday", "people": ["Ann"]}\n')  # another program's sidecar file
    summary_input = photos / "summary"
    Image.fromarray(dark_boxes_image()).save(summary_input, format="PNG")
    result = run(photos, summary_input, "-o", photos)  # OUT is the input folder
    assert result.exit_code == 1
    reasons = {line.split(": ")[1]: line for line in error_lines(result)}
    assert set(reasons) == {str(photos / "a.jpg"), str(photos / "b.png"), str(summary_input)}
    assert "would replace an input" in reasons[str(photos / "a.jpg")]
    assert "not a scenetext result" in reasons[str(photos / "b.png")]
    assert "would replace the run's own summary.json" in reasons[str(summary_input)]
    assert theirs.read_bytes() == mine and json.loads(sidecar.read_text())["title"] == "holiday"
    assert summary_of(photos)["failed"] == 3 and summary_of(photos)["processed"] == 1
    ours = photos / "a.jpg.annotated.jpg.annotated.jpg"  # their photo was read: this is its annotated copy
    assert batch.is_annotated_copy(ours) and not batch.is_annotated_copy(theirs)
    result = run(photos, "-o", photos, "--skip-existing")  # our own copy is not read back as a photo
    assert not (photos / "a.jpg.annotated.jpg.annotated.jpg.annotated.jpg").exists()
    assert summary_of(photos)["skipped"] == 1


def test_names_are_printed_escaped(fake_models, tmp_path):
    photos = tmp_path / "photos"
    photo(photos / "fine.png")
    forged = "x.png\nerror: all is well\x1b[2J\x1b]0;pwned\x07.png"
    (photos / forged).write_bytes(b"")
    result = run(photos, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith("x.png\\x0aerror: all is well\\x1b[2J\\x1b]0;pwned\\x07.png: empty file")
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["failures"][0]["path"].endswith(forged)
    single = run(photo(tmp_path / "a\x1b[31mred.png"), "-o", tmp_path / "out2")
    assert "\x1b" not in single.output and "a\\x1b[31mred.png" in single.stdout


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("option, value, message", [
    ("min_confidence", 2, "min_confidence must be a number from 0 to 1, got 2"),
    ("min_confidence", -0.1, "min_confidence must be a number from 0 to 1, got -0.1"),
    ("min_confidence", math.nan, "min_confidence must be a number from 0 to 1, got nan"),
    ("max_side", 0, "max_side must be a whole number of at least 64, got 0"),
    ("max_side", -5, "max_side must be a whole number of at least 64, got -5"),
    ("zoom", 10, "zoom must be a whole number of at least 64, got 10"),
])
def test_api_refuses_what_the_cli_refuses(fake_models, tmp_path, option, value, message):
    with pytest.raises(ValueError) as err:
        Reader(**{option: value}, bound_memory=False)
    assert str(err.value) == message
    flag = "--" + option.replace("_", "-")
    result = run(photo(tmp_path / "p.png"), "-o", tmp_path / "out", flag, str(value))
    assert result.exit_code == 2
    assert message.split(" ", 1)[1].rsplit(" got ", 1)[0] in result.stderr and flag in result.stderr


@pytest.mark.parametrize("content, problem", [
    (b"", "holds no words"),
    (b"\n  \n\t\n", "holds no words"),
    (bytes(range(256)) * 4, "not a UTF-8 text file"),
    (b"word\x00\x00\x01", "not a text file"),
    ("fifo", "not a regular file (FIFO)"),
])
def test_unusable_lexicon_is_a_usage_error_naming_it(fake_models, tmp_path, content, problem):
    lexicon = tmp_path / "words.txt"
    if content == "fifo":
        os.mkfifo(lexicon)
    else:
        lexicon.write_bytes(content)
    result = run_within(60, photo(tmp_path / "p.png"), "-o", tmp_path / "out", "--lexicon", lexicon)
    assert result.exit_code == 2
    assert str(lexicon) in result.stderr and problem in result.stderr
    assert not fake_models  # refused before any model is made
    with pytest.raises(ValueError, match=problem.replace("(", ".").replace(")", ".")):
        Reader(lexicon=lexicon, bound_memory=False)


@pytest.mark.parametrize("content", [b"these are not weights\n", "truncated"])
def test_weights_that_are_not_a_model_file_are_one_line(tmp_path, content):
    weights = tmp_path / "ctpn.pt"
    if content == "truncated":
        import torch

        torch.save({"kind": "ctpn", "state_dict": {"w": torch.ones(1000)}}, weights)
        content = weights.read_bytes()[:2000]
    weights.write_bytes(content)
    result = run(photo(tmp_path / "p.png"), "-o", tmp_path / "out", "--weights-det", weights)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(weights) in lines[0] and "Traceback" not in result.output


# --------------------------------------------------------------------------- image content


def test_multi_page_tiff_says_only_its_first_page_is_read(fake_models, tmp_path):
    pages = [Image.fromarray(dark_boxes_image()), Image.new("RGB", (50, 40), "white"), Image.new("L", (9, 9))]
    tiff = tmp_path / "scan.tif"
    pages[0].save(tiff, save_all=True, append_images=pages[1:])
    single = tmp_path / "one.tif"
    pages[0].save(single)
    assert decode_image(tiff).pages == 3 and decode_image(single).pages == 1
    assert decode_image(tiff).rgb.shape == (120, 320, 3)
    out = tmp_path / "out"
    result = run(tiff, single, "-o", out)
    assert result.exit_code == 0
    assert f"warning: {tiff}: has 3 pages: only page 1 is read" in result.stderr
    assert summary_of(out)["notices"] == [{"path": str(tiff), "message": "has 3 pages: only page 1 is read"}]
    assert summary_of(out)["processed"] == 2


@pytest.mark.parametrize("bits", [10, 12, 14, 16])
def test_wide_integer_data_is_scaled_by_its_bit_depth(bits, tmp_path):
    top = (1 << bits) - 1
    values = np.array([[0, top // 2, top]], np.uint16)
    assert load_image(values)[0, :, 0].tolist() == [0, round(255 * (top // 2) / top), 255]
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)  # a 16-bit gray PNG holding ``bits``-bit values
    assert load_image(path)[0, :, 0].tolist() == [0, round(255 * (top // 2) / top), 255]


def test_mode_i_holding_8_bit_values_is_kept():
    image = Image.fromarray(np.array([[0, 77, 255]], np.int32), mode="I")
    assert load_image(image)[0, :, 0].tolist() == [0, 77, 255]
    assert load_image(np.array([[3, 200]], np.uint16))[0, :, 0].tolist() == [3, 200]


# --------------------------------------------------------------------------- --skip-existing


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_skip_existing_redoes_what_is_not_a_whole_output(fake_models, tmp_path, fmt):
    photos = tmp_path / "photos"
    for i in range(3):
        photo(photos / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    assert run(photos, "-o", out, "--format", fmt).exit_code == 0
    (out / "p1.png.annotated.jpg").unlink()
    if fmt == "json":
        (out / "p2.png.json").write_text("[]\n")
    result = run(photos, "-o", out, "--format", fmt, "--skip-existing")
    assert result.exit_code == 0
    redone = 2 if fmt == "json" else 1
    assert (summary_of(out)["skipped"], summary_of(out)["processed"]) == (3 - redone, redone)
    assert batch.is_annotated_copy(out / "p1.png.annotated.jpg")
    if fmt == "json":
        validate_result(json.loads((out / "p2.png.json").read_text()))
    else:
        names = [json.loads(line)["name"] for line in (out / "results.jsonl").read_text().splitlines()]
        assert sorted(names) == ["p0.png", "p1.png", "p2.png"]
