"""Sharded word-crop corpora: the on-disk format of ``scenetext synth words``.

A corpus is a folder of fixed-size shard files and ``manifest.json``::

    DIR/manifest.json            settings, and one entry per finished shard
    DIR/shard-000000.npz         crops 0 .. shard_size - 1
    DIR/shard-000001.npz         crops shard_size .. 2 * shard_size - 1, ...

A shard is an uncompressed NumPy ``.npz`` read with ``allow_pickle=False``: ``images`` (uint8,
the encoded crops end to end), ``offsets`` (int64, ``count + 1`` byte offsets into ``images``:
crop ``j`` is ``images[offsets[j]:offsets[j + 1]]``), ``labels`` (unicode, one per crop) and
``first`` (the corpus index of its first crop). Shards and the manifest are written atomically
(a temporary file renamed into place), so a shard file that exists is whole. Shard ``k`` holds
the crops ``k * shard_size`` up to ``(k + 1) * shard_size`` (the last shard may hold fewer).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..imageio import atomic_write_bytes, atomic_write_text

FORMAT = "scenetext-word-shards"
VERSION = 1
MANIFEST = "manifest.json"


class CorpusError(ValueError):
    """A corpus folder, manifest or shard that cannot be used; the message names the file."""


@dataclass(frozen=True)
class ShardEntry:
    """A finished shard as the manifest lists it."""

    file: str
    first: int
    count: int
    bytes: int


@dataclass
class Manifest:
    """What ``manifest.json`` holds: how the corpus was made, and the shards finished so far.

    ``settings`` are the values a rerun must share to keep the finished shards (seed, shard size,
    image encoding, synthetic sources); ``count`` is the number of crops the corpus is to hold.
    """

    count: int
    shard_size: int
    settings: dict
    shards: list[ShardEntry] = field(default_factory=list)

    @property
    def n_shards(self) -> int:
        return -(-self.count // self.shard_size)

    @property
    def complete(self) -> bool:
        return len(self.shards) == self.n_shards

    def shard_range(self, k: int) -> tuple[int, int]:
        """``(first, count)`` of shard ``k``."""
        first = k * self.shard_size
        return first, min(self.shard_size, self.count - first)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "version": VERSION, "count": self.count, "shard_size": self.shard_size,
                           "settings": self.settings, "complete": self.complete,
                           "shards": [asdict(s) for s in sorted(self.shards, key=lambda s: s.first)]}, indent=1)


def shard_name(k: int) -> str:
    return f"shard-{k:06d}.npz"


def write_manifest(folder: str | os.PathLike, manifest: Manifest) -> None:
    atomic_write_text(Path(folder) / MANIFEST, manifest.to_json() + "\n")


def read_manifest(folder: str | os.PathLike) -> Manifest:
    """The manifest of a corpus folder; :class:`CorpusError` naming the file when it is missing
    or is not a corpus manifest."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file: not a word corpus (scenetext synth words writes one)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorpusError(f"{path}: cannot read the corpus manifest ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorpusError(f"{path}: not a {FORMAT} manifest")
    if data.get("version") != VERSION:
        raise CorpusError(f"{path}: manifest version {data.get('version')!r}, this scenetext reads {VERSION}")
    try:
        shards = [ShardEntry(str(s["file"]), int(s["first"]), int(s["count"]), int(s["bytes"]))
                  for s in data["shards"]]
        manifest = Manifest(int(data["count"]), int(data["shard_size"]), dict(data["settings"]), shards)
    except (KeyError, TypeError, ValueError) as err:
        raise CorpusError(f"{path}: malformed manifest ({type(err).__name__}: {err})") from None
    if manifest.count < 1 or manifest.shard_size < 1:
        raise CorpusError(f"{path}: malformed manifest (count and shard_size must be positive)")
    return manifest


@dataclass(frozen=True)
class Shard:
    """A shard in memory: the encoded crops, their byte offsets and labels."""

    images: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    first: int

    def __len__(self) -> int:
        return len(self.labels)

    def encoded(self, j: int) -> np.ndarray:
        return self.images[self.offsets[j]:self.offsets[j + 1]]

    def decode(self, j: int) -> tuple[np.ndarray, str]:
        """Crop ``j`` as RGB ``uint8`` and its label."""
        import cv2

        bgr = cv2.imdecode(self.encoded(j), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"crop {self.first + j} does not decode")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), str(self.labels[j])


def encode_shard(encoded: list[bytes], labels: list[str], first: int) -> bytes:
    """The bytes of a shard file holding ``encoded`` crops (JPEG or PNG bytes) and ``labels``."""
    if len(encoded) != len(labels):
        raise ValueError("one label per crop")
    offsets = np.zeros(len(encoded) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in encoded])
    buf = io.BytesIO()
    np.savez(buf, images=np.frombuffer(b"".join(encoded), np.uint8), offsets=offsets,
             labels=np.array(labels, dtype=str), first=np.int64(first))
    return buf.getvalue()


def write_shard(path: str | os.PathLike, encoded: list[bytes], labels: list[str], first: int) -> int:
    """Write a shard atomically; returns its size in bytes."""
    data = encode_shard(encoded, labels, first)
    atomic_write_bytes(path, data)
    return len(data)


def read_shard(path: str | os.PathLike) -> Shard:
    """A shard file in memory; :class:`CorpusError` naming the file when it is not a whole shard."""
    try:
        with np.load(path, allow_pickle=False) as z:
            shard = Shard(z["images"], z["offsets"], z["labels"], int(z["first"]))
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such shard file") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise CorpusError(f"{path}: not a readable corpus shard ({type(err).__name__})") from None
    if (shard.images.dtype != np.uint8 or len(shard.offsets) != len(shard.labels) + 1
            or shard.offsets[-1] != len(shard.images) or (np.diff(shard.offsets) < 0).any()):
        raise CorpusError(f"{path}: not a readable corpus shard (inconsistent offsets)")
    return shard


def shard_count(path: str | os.PathLike) -> int | None:
    """The number of crops in a shard file, reading only its offsets; ``None`` when it is not a
    readable shard."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return len(z["offsets"]) - 1
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
