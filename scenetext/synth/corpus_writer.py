"""Pre-rendered synthetic word corpora: ``scenetext synth words -n N -o DIR --workers K``.

Crop ``i`` of a corpus is :class:`~.datasets.SynthWordDataset` item ``i`` for the seed, so a
corpus is the same whoever renders which part. Each worker process renders whole shards
(:mod:`scenetext.data.shards`) and writes each one atomically; the main process adds each
finished shard to ``manifest.json``. A rerun into the same folder keeps every whole shard
already there and renders only the others (an interrupted run resumes; a larger ``-n`` grows
the corpus); settings that would change the crops (seed, shard size, JPEG quality, backgrounds,
word lists) must be those of the manifest; the fonts installed are not checked. One writer per
folder at a time.
"""

from __future__ import annotations

import multiprocessing
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..data.shards import (
    MANIFEST,
    CorpusError,
    Manifest,
    ShardEntry,
    read_manifest,
    shard_count,
    shard_name,
    write_manifest,
    write_shard,
)

DEFAULT_SHARD_SIZE = 4096
DEFAULT_QUALITY = 95


@dataclass(frozen=True)
class CorpusReport:
    """What :func:`write_corpus` did."""

    folder: Path
    crops: int
    shards: int
    kept: int  # shards found whole and kept
    rendered: int  # shards rendered by this run


@dataclass(frozen=True)
class ShardTask:
    """One shard to render: corpus indices ``first .. first + count - 1`` into ``path``."""

    path: str
    first: int
    count: int
    n: int
    seed: int
    quality: int


def corpus_settings(seed: int, quality: int) -> dict:
    """The settings a corpus's crops depend on, as the manifest records them."""
    from .sources import background_dir, word_lists

    backgrounds = background_dir()
    return {"seed": seed, "encoding": "jpg", "quality": quality,
            "backgrounds": str(backgrounds.resolve()) if backgrounds else "none",
            "words": [str(Path(p).resolve()) for p in word_lists()]}


def write_corpus(out: str | Path, n: int, seed: int = 0, workers: int = 1, shard_size: int = DEFAULT_SHARD_SIZE,
                 quality: int = DEFAULT_QUALITY, progress: Callable[[int], None] | None = None) -> CorpusReport:
    """Render ``n`` synthetic word crops into the sharded corpus ``out`` (see the module notes).

    ``workers`` processes render shards side by side (0: in this process). ``progress(k)`` is
    called with the crops of each shard as it is done, kept shards included.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = corpus_settings(seed, quality)
    if (out / MANIFEST).is_file():
        old = read_manifest(out)
        if old.settings != settings or old.shard_size != shard_size:
            raise CorpusError(f"{out / MANIFEST}: the corpus there was made with other settings "
                              f"({_differences(old, settings, shard_size)}); use them again or another folder")
    for stale in out.glob(".shard-*.tmp"):  # left by a writer that was killed mid-write
        stale.unlink()
    manifest = Manifest(n, shard_size, settings)
    todo = []
    for k in range(manifest.n_shards):
        first, count = manifest.shard_range(k)
        path = out / shard_name(k)
        if path.is_file() and shard_count(path) == count:
            manifest.shards.append(ShardEntry(path.name, first, count, path.stat().st_size))
            if progress:
                progress(count)
        else:
            todo.append(ShardTask(str(path), first, count, n, seed, quality))
    kept = len(manifest.shards)
    write_manifest(out, manifest)
    for entry in _render(todo, workers):
        manifest.shards.append(entry)
        write_manifest(out, manifest)
        if progress:
            progress(entry.count)
    return CorpusReport(out, n, manifest.n_shards, kept, len(todo))


def _differences(old: Manifest, settings: dict, shard_size: int) -> str:
    diffs = [f"{key} {old.settings.get(key)!r}, not {settings[key]!r}"
             for key in settings if old.settings.get(key) != settings[key]]
    if old.shard_size != shard_size:
        diffs.append(f"shard size {old.shard_size}, not {shard_size}")
    return "; ".join(diffs)


def _render(todo: list[ShardTask], workers: int):
    """Yield each task's :class:`ShardEntry` as its shard is written, in any order."""
    if not todo:
        return
    if workers <= 0:
        yield from map(render_shard, todo)
        return
    # spawn: fresh processes, none of this one's threads or state; they ignore Ctrl-C, and the
    # pool is terminated here on any error or interrupt (a shard being written is left as a
    # temporary file, removed by the next run).
    pool = multiprocessing.get_context("spawn").Pool(min(workers, len(todo)), initializer=_init_worker)
    try:
        yield from pool.imap_unordered(render_shard, todo)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _init_worker() -> None:
    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)


_DATASETS: dict[tuple[int, int], object] = {}  # per worker process: fonts and backgrounds load once


def render_shard(task: ShardTask) -> ShardEntry:
    """Render and write one shard; returns its manifest entry."""
    from .datasets import SynthWordDataset
    from .synth_writer import encode_jpg

    dataset = _DATASETS.get((task.n, task.seed))
    if dataset is None:
        dataset = _DATASETS[(task.n, task.seed)] = SynthWordDataset(task.n, task.seed)
    encoded, labels = [], []
    for i in range(task.first, task.first + task.count):
        img, label = dataset[i]
        encoded.append(encode_jpg(img, task.quality))
        labels.append(label)
    size = write_shard(task.path, encoded, labels, task.first)
    return ShardEntry(Path(task.path).name, task.first, task.count, size)
