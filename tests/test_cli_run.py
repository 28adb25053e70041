"""`scenetext run` and `scenetext eval e2e` on generated files, with the models replaced by
stand-ins through ``cli.make_reader`` (see tests/helpers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import BlobDetector, dark_boxes_image, save_mode
from scenetext import batch, cli
from scenetext.reader import Reader
from scenetext.results import validate_result


@pytest.fixture
def fake_models(monkeypatch, recognizer):
    """Make ``scenetext run`` use a blob detector and an untrained CRNN; records the options."""
    calls = []

    def make_reader(**options):
        calls.append(options)
        return Reader(BlobDetector(), recognizer, min_confidence=0, level=options["level"])

    monkeypatch.setattr(cli, "make_reader", make_reader)
    return calls


def run(*args):
    return CliRunner().invoke(cli.main, ["run", *map(str, args)])


def photo(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    image = dark_boxes_image()
    image[int(rng.integers(105, 115)), :] = 200  # make each photo's bytes differ
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def bad_files(folder: Path) -> dict[str, str]:
    """Broken files of every kind, mapped to the reason reported for each."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.jpg").write_bytes(b"")
    good = (folder / "good_for_truncation.jpg")
    Image.fromarray(dark_boxes_image()).save(good, quality=90)
    data = good.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    good.unlink()
    (folder / "notes.png").write_text("this is not an image\n")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return {"zero.jpg": "empty file", "truncated.jpg": "truncated or corrupt image",
            "notes.png": "not an image", "corrupt.png": ""}


def tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- one image


def test_one_image(fake_models, tmp_path):
    image = photo(tmp_path / "shop.png")
    out = tmp_path / "out"
    result = run(image, "-o", out)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "shop.png.json").read_text())
    validate_result(data)
    assert data["path"] == str(image) and len(data["lines"]) == 2
    assert (out / "shop.png.annotated.jpg").stat().st_size > 0
    assert Image.open(out / "shop.png.annotated.jpg").size == (320, 120)
    assert "confidence" in result.stdout and str(image) in result.stdout  # the table
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["processed"], summary["failed"], summary["lines"]) == (1, 1, 0, 2)
    assert not tmp_files(out)
    assert fake_models == [dict(weights_det=None, weights_rec=None, max_side=None, min_confidence=0.3,
                                lexicon=None, level="line", zoom=None, lm="auto")]


def test_options_reach_the_reader(fake_models, tmp_path):
    image = photo(tmp_path / "a.png")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("open\n")
    result = run(image, "-o", tmp_path / "out", "--level", "word", "--min-confidence", "0.5", "--max-side", "800",
                 "--lexicon", lexicon, "--weights-det", weights, "--weights-rec", weights, "--quiet", "--zoom", "1400")
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert fake_models == [dict(weights_det=weights, weights_rec=weights, max_side=800, min_confidence=0.5,
                                lexicon=lexicon, level="word", zoom=1400, lm="auto")]


@pytest.mark.parametrize(("mode", "suffix"), [("L", "png"), ("RGBA", "png"), ("P", "png"), ("I;16", "png"),
                                              ("CMYK", "jpg")])
def test_image_modes_are_read(fake_models, tmp_path, mode, suffix):
    image = save_mode(tmp_path / f"x.{suffix}", dark_boxes_image(), mode)
    result = run(image, "-o", tmp_path / "out", "--no-annotate")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / f"x.{suffix}.json").read_text())
    assert (data["width"], data["height"], len(data["lines"])) == (320, 120, 2)


# --------------------------------------------------------------------------- folders and failures


def test_folder_with_bad_files(fake_models, tmp_path):
    photos = tmp_path / "photos"
    for i in range(3):
        photo(photos / f"p{i}.png", seed=i)
    photo(photos / "sub" / "deep.png")
    (photos / "readme.txt").write_text("not picked up from folders")
    reasons = bad_files(photos)
    out = tmp_path / "out"
    result = run(photos, "-o", out, "--jobs", "3")
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == len(reasons)
    for name, reason in reasons.items():
        (line,) = [e for e in errors if name in e]
        assert str(photos / name) in line and reason in line
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["processed"], summary["failed"]) == (7, 3, 4)
    assert {Path(f["path"]).name for f in summary["failures"]} == set(reasons)
    assert all(f["reason"] for f in summary["failures"])
    for i in range(3):
        validate_result(json.loads((out / f"p{i}.png.json").read_text()))
        assert (out / f"p{i}.png.annotated.jpg").is_file()
    assert not (out / "sub").exists()  # not recursive
    assert not list(out.glob("zero*")) and not tmp_files(out)
    assert "3 images read" in result.stdout


def test_recursive_names_outputs_by_relative_path(fake_models, tmp_path):
    photos = tmp_path / "photos"
    photo(photos / "top.png")
    photo(photos / "a" / "b" / "deep.png")
    photo(photos / ".hidden" / "skip.png")
    out = photos / "results"  # inside the input folder: its outputs must not be read back
    for _ in range(2):
        result = run(photos, "-o", out, "--recursive")
        assert result.exit_code == 0, result.output
        assert json.loads((out / "summary.json").read_text())["images"] == 2
    assert (out / "top.png.json").is_file() and (out / "a" / "b" / "deep.png.json").is_file()
    assert not list(out.rglob("*skip*"))


def test_explicit_files_and_name_clashes(fake_models, tmp_path):
    one = photo(tmp_path / "a" / "x.png")
    two = photo(tmp_path / "b" / "x.png", seed=1)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    result = run(one, two, notes, one, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "already used by" in result.stderr and "notes.txt: not an image" in result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["processed"], summary["failed"]) == (1, 2)


def test_empty_folder_is_reported(fake_models, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(empty, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert f"{empty}: no images found" in result.stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["failures"][0]["path"] == str(empty)


def test_unwritable_output_is_reported_before_any_work(monkeypatch, tmp_path):
    def no_models(**options):
        raise AssertionError("models loaded although the output folder is unusable")

    monkeypatch.setattr(cli, "make_reader", no_models)
    blocker = tmp_path / "file"
    blocker.write_text("a regular file")
    result = run(photo(tmp_path / "p.png"), "-o", blocker / "out")
    assert result.exit_code == 2
    assert "--out" in result.stderr and "cannot create directory" in result.stderr


def test_model_load_failure_is_one_clear_error(monkeypatch, tmp_path):
    def missing(**options):
        raise FileNotFoundError("weights/ctpn.pt: model file not found")

    monkeypatch.setattr(cli, "make_reader", lambda **options: type("R", (), {"load_models": staticmethod(missing)})())
    result = run(photo(tmp_path / "p.png"), "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "cannot load the models: weights/ctpn.pt: model file not found" in result.stderr


def test_a_failing_image_does_not_sink_its_batch(monkeypatch, recognizer, tmp_path):
    class Fussy(BlobDetector):
        def detect(self, rgb, level="line"):
            if rgb.shape[1] == 77:
                raise RuntimeError("cannot handle width 77")
            return super().detect(rgb, level)

    monkeypatch.setattr(cli, "make_reader", lambda **o: Reader(Fussy(), recognizer, min_confidence=0))
    photos = tmp_path / "photos"
    for i in range(3):
        photo(photos / f"p{i}.png", seed=i)
    Image.fromarray(np.full((40, 77, 3), 255, np.uint8)).save(photos / "odd.png")
    result = run(photos, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "odd.png: processing failed: RuntimeError: cannot handle width 77" in result.stderr
    assert len(list((tmp_path / "out").glob("*.json"))) == 4  # 3 images + summary


@pytest.mark.parametrize("args", [[], ["--format", "xml", "."], ["missing.png"], ["--min-confidence", "2", "."],
                                  ["--jobs", "0", "."], ["--bogus", "."]])
def test_usage_errors_exit_2(fake_models, args):
    assert run(*args).exit_code == 2


# --------------------------------------------------------------------------- resuming


def test_skip_existing_resumes_and_keeps_outputs(fake_models, tmp_path):
    photos = tmp_path / "photos"
    for i in range(4):
        photo(photos / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    assert run(photos, "-o", out).exit_code == 0
    first = outputs(out)

    result = run(photos, "-o", out, "--skip-existing")
    assert result.exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["skipped"], summary["processed"]) == (4, 0)
    again = outputs(out)
    per_run = {"summary.json", "report.html"}
    assert {k: v for k, v in again.items() if k not in per_run} == {k: v for k, v in first.items() if k not in per_run}

    (out / "p2.png.json").unlink()
    (out / "p3.png.json").write_text('{"half": ')  # a JSON that does not parse is redone
    assert run(photos, "-o", out, "--skip-existing").exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["skipped"], summary["processed"]) == (2, 2)
    for name in ("p2.png.json", "p3.png.json"):
        old, new = json.loads(first[name]), json.loads((out / name).read_text())
        old.pop("timings_ms"), new.pop("timings_ms")
        assert old == new


def test_interrupted_run_leaves_whole_files_and_resumes(monkeypatch, fake_models, tmp_path):
    photos = tmp_path / "photos"
    for i in range(6):
        photo(photos / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    real_write = batch.OutputWriter.write_files
    written = []

    def write_then_die(self, job, rgb, page):
        if len(written) == 2:
            raise KeyboardInterrupt
        real_write(self, job, rgb, page)
        written.append(job)

    monkeypatch.setattr(batch.OutputWriter, "write_files", write_then_die)
    result = run(photos, "-o", out, "--jobs", "1")
    assert result.exit_code == 1 and "Aborted" in result.output  # click's answer to Ctrl-C
    assert not tmp_files(out)
    done = sorted(out.glob("*.png.json"))
    assert len(done) == 2
    for path in done:
        validate_result(json.loads(path.read_text()))

    monkeypatch.setattr(batch.OutputWriter, "write_files", real_write)
    result = run(photos, "-o", out, "--skip-existing")
    assert result.exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["skipped"], summary["processed"]) == (2, 4)
    assert len(list(out.glob("*.png.json"))) == 6 and len(list(out.glob("*.annotated.jpg"))) == 6


def test_rerun_removes_temporaries_of_a_killed_run(fake_models, tmp_path):
    photos = tmp_path / "photos"
    photo(photos / "p0.png", seed=0)
    out = tmp_path / "out"
    out.mkdir()
    # what a SIGKILL in the middle of an atomic write leaves (tempfile's 8 random characters)
    leftovers = [".p0.png.json.ab_c9xyz.tmp", ".p0.png.annotated.jpg.q1w2e3r4.tmp", ".summary.json.zzzzzzzz.tmp"]
    for name in leftovers:
        (out / name).write_text('{"half": ')
    kept = [".other.json.ab_c9xyz.tmp", ".p0.png.json.tmp", "notes.tmp"]  # not ours: left alone
    for name in kept:
        (out / name).write_text("user file")

    assert run(photos, "-o", out, "--skip-existing").exit_code == 0
    assert not any((out / name).exists() for name in leftovers)
    assert all((out / name).read_text() == "user file" for name in kept)
    validate_result(json.loads((out / "p0.png.json").read_text()))


# --------------------------------------------------------------------------- formats


def test_jsonl_format(fake_models, tmp_path):
    photos = tmp_path / "photos"
    for i in range(3):
        photo(photos / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    assert run(photos, "-o", out, "--format", "jsonl", "--no-annotate").exit_code == 0
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3
    for line, i in zip(lines, range(3)):
        record = json.loads(line)
        validate_result(record)
        assert record["path"] == str(photos / f"p{i}.png")
    assert not list(out.glob("*.png.json")) and not list(out.glob("*.jpg"))

    photo(photos / "p3.png", seed=3)
    result = run(photos, "-o", out, "--format", "jsonl", "--no-annotate", "--skip-existing")
    assert result.exit_code == 0
    assert json.loads((out / "summary.json").read_text())["processed"] == 1
    again = (out / "results.jsonl").read_text().splitlines()
    assert again[:3] == lines and len(again) == 4


def test_txt_format(fake_models, tmp_path):
    image = photo(tmp_path / "p.png")
    out = tmp_path / "out"
    assert run(image, "-o", out, "--format", "txt").exit_code == 0
    text = (out / "p.png.txt").read_text()
    assert len(text.splitlines()) == 2 and text.endswith("\n")
    assert (out / "p.png.annotated.jpg").is_file() and not (out / "p.png.json").exists()
    result = run(image, "-o", out, "--format", "txt", "--skip-existing")
    assert "skipped" in result.stdout


# --------------------------------------------------------------------------- eval e2e


def test_eval_e2e(fake_models, tmp_path):
    root = tmp_path / "set"
    (root / "gt").mkdir(parents=True)
    for i in range(2):
        photo(root / "images" / f"img_{i}.png", seed=i)
        (root / "gt" / f"img_{i}.txt").write_text(
            "30,20,200,20,200,44,30,44,OPEN\n40,70,280,70,280,100,40,100,###\n")
    report = tmp_path / "e2e.json"
    result = CliRunner().invoke(cli.main, ["eval", "e2e", str(root), "--json", str(report), "--limit", "5"])
    assert result.exit_code == 0, result.output
    figures = json.loads(report.read_text())
    for key in ("precision", "recall", "hmean", "e2e_precision", "e2e_recall", "e2e_hmean", "ms_per_image"):
        assert 0 <= figures[key]
    assert figures["n_images"] == 2
    # the blob detector finds the boxes exactly; the ### region is ignored
    assert figures["precision"] == figures["recall"] == 1.0
    assert fake_models[0]["level"] == "word"
    assert "end2end" in result.stdout


def _commands(group, path=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, path + (name,))
        else:
            yield path + (name,), command


def test_no_command_declares_an_option_twice():
    """Two options of one command with the same flag or name share one value in click, so one of
    them is lost (train split's detection sets and the synthetic text's word list, say)."""
    seen_any = False
    for path, command in _commands(cli.main):
        flags = [flag for param in command.params for flag in getattr(param, "opts", []) + getattr(param, "secondary_opts", [])
                 if flag.startswith("-")]
        names = [param.name for param in command.params]
        duplicates = sorted({f for f in flags if flags.count(f) > 1} | {n for n in names if names.count(n) > 1})
        assert not duplicates, f"scenetext {' '.join(path)}: {duplicates} declared more than once"
        seen_any = seen_any or "split" in path
    assert seen_any


def test_train_split_reads_word_sets_and_a_word_list(tmp_path, monkeypatch):
    from scenetext.synth import sources
    from scenetext.train import splitter

    # the options set these for the run; monkeypatch puts them back afterwards
    monkeypatch.setenv(sources.BACKGROUNDS_ENV, "unset")
    monkeypatch.setenv(sources.WORDS_ENV, "unset")
    got = {}
    monkeypatch.setattr(splitter, "train", lambda cfg: got.setdefault("cfg", cfg))
    words = tmp_path / "words.txt"
    words.write_text("alpha\nbeta\n")
    sets = tmp_path / "set"
    sets.mkdir()
    result = CliRunner().invoke(cli.main, ["train", "split", "--word-sets", str(sets), "--words", str(words),
                                           "--backgrounds", "none", "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert got["cfg"].words == [str(sets)]
