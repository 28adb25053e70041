"""The wheel carries its models: built, installed into a fresh venv and run from another folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "street-sign.jpg"


def _run(cmd, cwd, timeout=300, env=None):
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env=env)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", dist], ROOT)
    (found,) = dist.glob("scenetext-*.whl")
    return found


def test_the_wheel_is_small_and_carries_every_shipped_model(wheel):
    assert wheel.stat().st_size < 20_000_000
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("scenetext/models/manifest.json"))
    files = {entry["file"] for entry in manifest["models"]}
    assert {"ctpn.pt", "crnn.pt", "wordsplit.pt"} <= files
    assert {f"scenetext/models/{f}" for f in files} <= names
    # The shipped models' ONNX export, which the default onnxruntime backend loads without torch.
    assert {f"scenetext/models/onnx/{f}" for f in ("manifest.json", "ctpn.onnx", "wordsplit.onnx", "crnn.onnx")} <= names
    assert not any(name.startswith(("weights/", "tests/", "runs/")) for name in names)


def test_an_installed_wheel_reads_a_photo_from_any_folder(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)  # this environment's pip installs into it (--python)
    py = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel], tmp_path)
    # The dependencies (the pinned torch among them) come from this test's own environment through
    # a path entry, which puts them on sys.path without running that environment's .pth files
    # (so the checkout's editable install is not seen).
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip())
    (site / "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(PHOTO, elsewhere / "photo.jpg")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = _run([py, "-c", "import scenetext; print(scenetext.__file__)"], elsewhere, env=env).stdout.strip()
    assert Path(where).is_relative_to(env_dir), where
    _run([env_dir / "bin" / "scenetext", "run", "photo.jpg", "-o", "out", "-q"], elsewhere, env=env)
    page = json.loads((elsewhere / "out" / "photo.jpg.json").read_text())
    texts = " ".join(line["text"] for line in page["lines"]).lower()
    assert "main" in texts and "street" in texts
    listed = _run([py, "-m", "scenetext", "models", "--check", "--json"], elsewhere, env=env)
    assert {m["name"] for m in json.loads(listed.stdout)} >= {"ctpn", "crnn", "wordsplit"}


def test_a_changed_model_file_is_refused_in_one_line(tmp_path):
    from scenetext import shipped

    folder = tmp_path / "models"
    shutil.copytree(shipped.models_dir(), folder)
    entry = shipped.find("crnn", folder)
    assert shipped.model_path("crnn", folder) == folder / "crnn.pt"
    data = bytearray((folder / "crnn.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "crnn.pt").write_bytes(bytes(data))
    with pytest.raises(shipped.ManifestError) as err:
        shipped.verify(folder, entry)
    assert str(folder / "crnn.pt") in str(err.value) and "sha256" in str(err.value) and "\n" not in str(err.value)
