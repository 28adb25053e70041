"""`scenetext run --ray` on a local Ray cluster started here: the same texts, failures and outputs
as the plain run on real photos with broken files mixed in, and a run cut half-way resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import DATA, ROOT
from scenetext import cli

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'scenetext[ray]')")
pytestmark = pytest.mark.slow  # a local cluster and real models: about a minute

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


def test_ray_run_matches_the_plain_run_and_resumes(cluster, photos, tmp_path):
    plain, on_ray = tmp_path / "plain", tmp_path / "ray"
    code, errors = run(photos, "-o", plain)
    assert code == 1, errors
    code, errors = run(photos, "-o", on_ray, "--ray", "--ray-workers", "2")
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


def test_a_wrapped_remote_error_is_one_line():
    from scenetext.rayrun import root_reason

    remote = ("The actor died because of an error raised in its creation task, \x1b[36mray::MapWorker.__init__()"
              "\x1b[39m (pid=1)\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
              "ValueError: an inner one\n  File \"y.py\", line 2\n"
              "scenetext.checkpoint.ModelFileError: /m/ctpn.pt: model file not found\n")
    assert root_reason(RuntimeError(remote)) == "scenetext.checkpoint.ModelFileError: /m/ctpn.pt: model file not found"
    assert root_reason(RuntimeError("lost\nmore")) == "RuntimeError: lost"
