"""Model folders: the models shipped inside the package, and folders of models a user trained.

A model folder holds model files (``*.pt``, see :mod:`scenetext.checkpoint`; language priors,
``*.npz``, see :meth:`scenetext.recognition.lm.WordPrior.save`) and
``manifest.json``, one entry per file: its name, kind, role, size, sha256, the settings stored
with it and its model-card figures. The shipped folder is ``scenetext/models/`` inside the
installed package (found with :mod:`importlib.resources`, so it works from a wheel as from a
checkout); its model cards are ``weights/README.md`` in the source tree.

A file is loaded only when its size and sha256 match its entry: a changed or damaged file is
refused with one line naming it (:class:`ManifestError`).

    >>> from scenetext import shipped
    >>> [m.name for m in shipped.manifest()]
    ['crnn', 'ctpn', 'wordsplit', 'crnn-fast', 'crnn-small', 'prior-en']
    >>> shipped.model_path("crnn")          # verified path of the default recogniser
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

__all__ = ["ManifestError", "ModelEntry", "manifest", "model_path", "models_dir", "refresh_manifest",
           "verify", "DEFAULTS"]

MANIFEST_NAME = "manifest.json"
#: The file each role loads when no file is given.
DEFAULTS = {"detector": "ctpn", "recogniser": "crnn", "word splitter": "wordsplit"}
_ROLES = {"ctpn": "detector", "crnn": "recogniser", "wordsplit": "word splitter", "prior": "language prior"}


class ManifestError(ValueError):
    """A model folder's manifest is missing or broken, or a file does not match its entry."""


@dataclass(frozen=True)
class ModelEntry:
    """One model file of a folder, as its manifest describes it."""

    name: str
    file: str
    kind: str
    role: str
    size: int
    sha256: str
    settings: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def models_dir() -> Path:
    """The folder of the shipped models inside the installed package."""
    return Path(str(resources.files("scenetext") / "models"))


def _manifest_file(folder: Path) -> Path:
    return Path(folder) / MANIFEST_NAME


def manifest(folder: str | os.PathLike | None = None) -> list[ModelEntry]:
    """The entries of ``folder``'s manifest (default: the shipped models), in file order."""
    folder = Path(folder) if folder is not None else models_dir()
    path = _manifest_file(folder)
    if not path.is_file():
        raise ManifestError(f"{path}: no model manifest")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [ModelEntry(**entry) for entry in raw["models"]]
    except (ValueError, KeyError, TypeError) as err:
        raise ManifestError(f"{path}: not a model manifest ({type(err).__name__}: {err})".splitlines()[0]) from None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, per process


def file_sha256(path: Path, st: os.stat_result | None = None) -> str:
    """``sha256(path)``, computed once per process for a file of the same size and mtime."""
    st = st or os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = sha256(path)
    return _verified[key]


def verify(folder: Path, entry: ModelEntry) -> Path:
    """The entry's file, after checking that it is a regular file of the listed size and sha256."""
    path = Path(folder) / entry.file
    try:
        st = path.stat()
    except OSError:
        raise ManifestError(f"{path}: model file listed in {MANIFEST_NAME} is missing") from None
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: not a regular file")
    if st.st_size != entry.size:
        raise ManifestError(f"{path}: refused: {st.st_size} bytes, its manifest lists {entry.size}")
    if file_sha256(path, st) != entry.sha256:
        raise ManifestError(f"{path}: refused: its sha256 does not match {MANIFEST_NAME} (the file was changed "
                            "or damaged)")
    return path


def find(name: str, folder: str | os.PathLike | None = None) -> ModelEntry:
    """The entry called ``name`` in ``folder``'s manifest (default: the shipped models)."""
    for entry in manifest(folder):
        if entry.name == name:
            return entry
    where = folder or models_dir()
    raise ManifestError(f"{_manifest_file(Path(where))}: no model called {name!r}")


def model_path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The verified path of the model ``name`` (e.g. ``"crnn"``) of ``folder`` (default: shipped)."""
    folder = Path(folder) if folder is not None else models_dir()
    return verify(folder, find(name, folder))


def role_path(role: str, folder: str | os.PathLike | None = None) -> Path | None:
    """The verified file a folder holds for ``role`` (``"detector"``, ``"recogniser"``, ``"word
    splitter"``): its default name if listed, else its only file of that role; ``None`` if none."""
    folder = Path(folder) if folder is not None else models_dir()
    entries = [e for e in manifest(folder) if e.role == role]
    chosen = [e for e in entries if e.name == DEFAULTS[role]] or entries[:1]
    return verify(folder, chosen[0]) if chosen else None


def refresh_manifest(folder: str | os.PathLike | None = None, figures: dict[str, dict] | None = None,
                     descriptions: dict[str, str] | None = None) -> list[ModelEntry]:
    """Rewrite ``folder``'s manifest from the model files in it: size, sha256, kind and settings
    read from each file; figures and descriptions kept from the old manifest unless given."""
    from . import checkpoint
    from .imageio import atomic_write_text

    folder = Path(folder) if folder is not None else models_dir()
    old = {e.name: e for e in manifest(folder)} if _manifest_file(folder).is_file() else {}
    entries = []
    files = [*folder.glob("*.pt"), *folder.glob("*.npz")]
    for path in sorted(files, key=lambda p: (p.stem not in DEFAULTS.values(), p.suffix != ".pt", p.stem)):
        if path.suffix == ".npz":  # a language prior (scenetext.recognition.lm.WordPrior.save)
            from .recognition.lm import WordPrior

            WordPrior.load(path)
            kind, settings = "prior", {}
        else:
            ck = checkpoint.load(path)
            kind, settings = ck["kind"], dict(ck.get("meta", {}).get("settings", {}))
        name = path.stem
        previous = old.get(name)
        entries.append(ModelEntry(
            name=name, file=path.name, kind=kind, role=_ROLES.get(kind, kind),
            size=path.stat().st_size, sha256=sha256(path), settings=settings,
            figures=(figures or {}).get(name, previous.figures if previous else {}),
            description=(descriptions or {}).get(name, previous.description if previous else ""),
        ))
    text = json.dumps({"models": [e.to_dict() for e in entries]}, indent=2, ensure_ascii=False) + "\n"
    atomic_write_text(_manifest_file(folder), text)
    return entries
