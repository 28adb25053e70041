"""Model files: nothing in them runs when they are read, and every bad file is one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scenetext import checkpoint

ROOT = Path(__file__).resolve().parents[1]


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any code a crafted file runs."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload_file(tmp_path: Path) -> tuple[Path, Path]:
    """A real shipped detector file with a code-running object added to its metadata."""
    marker = tmp_path / "payload-ran"
    ck = torch.load(ROOT / "scenetext" / "models" / "ctpn.pt", weights_only=True)
    ck["meta"]["note"] = _Payload(str(marker))
    path = tmp_path / "ctpn-payload.pt"
    torch.save(ck, path)
    return path, marker


def test_a_payload_in_a_model_file_never_runs(tmp_path):
    path, marker = _payload_file(tmp_path)
    with pytest.raises(checkpoint.ModelFileError) as err:
        checkpoint.load(path, kind="ctpn")
    assert not marker.exists()
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "refused" in message


def test_cli_refuses_a_payload_file_in_one_line(tmp_path):
    path, marker = _payload_file(tmp_path)
    photo = ROOT / "examples" / "street-sign.jpg"
    result = subprocess.run([sys.executable, "-m", "scenetext.cli", "run", str(photo), "-o", str(tmp_path / "out"),
                             "--weights-det", str(path)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode != 0
    assert not marker.exists()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("content, problem", [
    (b"this is a text file, not weights\n", "not a readable model file"),
    (None, "not a readable model file"),  # a real file cut in half
    ("list", "not a scenetext model file"),  # a torch file, but not a model
])
def test_bad_model_files_are_one_line_errors(tmp_path, content, problem):
    path = tmp_path / "bad.pt"
    if content is None:
        whole = (ROOT / "scenetext" / "models" / "ctpn.pt").read_bytes()
        content = whole[: len(whole) // 2]
    if content == "list":
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(content)
    with pytest.raises(checkpoint.ModelFileError) as err:
        checkpoint.load(path)
    assert str(err.value).startswith(f"{path}: {problem}") and "\n" not in str(err.value)


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "weights.pt"
    os.mkfifo(fifo)
    with pytest.raises(checkpoint.ModelFileError, match="not a regular file"):
        checkpoint.load(fifo)  # opening a FIFO for reading would block forever


def test_save_refuses_objects_the_loader_would_refuse(tmp_path):
    with pytest.raises(TypeError, match="cannot hold"):
        checkpoint.save(tmp_path / "x.pt", {"kind": "crnn", "state_dict": {}, "meta": {"x": object()}})
    checkpoint.save(tmp_path / "y.pt", {"kind": "crnn", "state_dict": {"w": torch.ones(2)},
                                        "meta": {"path": Path("a/b"), "shape": (1, 2)}})
    loaded = checkpoint.load(tmp_path / "y.pt")
    assert loaded["meta"] == {"path": "a/b", "shape": (1, 2)}
