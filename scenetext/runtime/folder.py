"""ONNX export folders, read without torch: their manifest (:func:`read_manifest`) and the one
shipped inside the package (:func:`shipped_networks`, ``scenetext/models/onnx/``).

A folder written by ``scenetext export --onnx`` holds ``ctpn.onnx``, ``wordsplit.onnx`` (when the
detector uses the learned word splitter), ``crnn.onnx`` and ``manifest.json``, which records each
network's config, a digest of the weights it was exported from (checked against weights loaded
with torch), the sha256 of its ``.onnx`` file and, for the shipped models, the name and sha256 of
the model file it came from. The shipped folder is checked against those and against the
package's model manifest (:mod:`scenetext.shipped`), so it runs only beside the very files it
was exported from: a folder left behind by a weights update is refused, naming the command that
writes it again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..shipped import ManifestError, file_sha256, find, models_dir

MANIFEST = "manifest.json"
OPSET = 17
#: The networks of a folder, by file stem.
NETWORKS = ("ctpn", "wordsplit", "crnn")
#: Where the shipped networks' ONNX export lives, inside the package's model folder.
SHIPPED_ONNX = "onnx"
#: What writes the shipped folder again.
REFRESH_COMMAND = "scenetext export --onnx scenetext/models/onnx"


@dataclass(frozen=True)
class NetworkFile:
    """One exported network as the manifest lists it."""

    name: str  # "ctpn", "wordsplit" or "crnn"
    file: str
    digest: str  # of the weights it was exported from, as stored (before BatchNorm folding)
    config: dict
    sha256: str = ""  # of the .onnx file
    source: str = ""  # the shipped model file it was exported from ("ctpn.pt"), when it was one
    source_sha256: str = ""  # that file's sha256


def read_manifest(folder: str | Path) -> dict[str, NetworkFile]:
    """The networks an exported folder holds, by name (``ValueError`` when it is not one)."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
        return {e["name"]: NetworkFile(**e) for e in data["networks"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not an ONNX export folder of scenetext ({err})") from None


def shipped_onnx_dir() -> Path:
    """The folder of the shipped networks' ONNX export."""
    return models_dir() / SHIPPED_ONNX


def shipped_networks(names: tuple[str, ...] = NETWORKS) -> dict[str, tuple[Path, NetworkFile]]:
    """The shipped ONNX networks ``names``, each as its verified file and manifest entry.

    Raises :class:`~scenetext.shipped.ManifestError` (one line naming the file) when the folder or
    a network is missing, a file does not match its sha256, or a network was exported from other
    weights than the shipped model file of its name."""
    folder = shipped_onnx_dir()
    try:
        manifest = read_manifest(folder)
    except ValueError as err:
        raise ManifestError(str(err)) from None
    out = {}
    for name in names:
        entry = manifest.get(name)
        if entry is None:
            raise ManifestError(f"{folder / MANIFEST}: no {name} network")
        path = folder / entry.file
        if not os.path.isfile(path):
            raise ManifestError(f"{path}: missing or not a regular file")
        if file_sha256(path) != entry.sha256:
            raise ManifestError(f"{path}: refused: its sha256 does not match {MANIFEST} (the file was changed "
                                "or damaged)")
        model = find(name)
        if (entry.source, entry.source_sha256) != (model.file, model.sha256):
            raise ManifestError(f"{path} was exported from other weights than the shipped {model.file}; "
                                f"write it again with '{REFRESH_COMMAND}'")
        out[name] = (path, entry)
    return out
