"""Training samples streamed from pre-rendered word corpora (``scenetext train rec --corpus DIR``).

The corpora's shards (:mod:`scenetext.data.shards`) are joined into one list of crops, and a
global sample index maps to a crop as a pure function of (seed, index), like every other
training sample, so a resumed run continues exactly. Over each pass (``len(corpus)`` indices)
the shards come in a fresh seeded order, taken ``mix`` at a time; the crops of those ``mix``
shards are shuffled together. Consecutive indices therefore stay within a few shards: a data
worker holds at most ``mix`` decoded shard files in memory (with 4,096-crop shards, some 15 MB
each), however large the corpus.

A corpus still being written can be read: only the shards its manifest lists at the start are
used (a run resumed after more shards are finished sees a different order).
"""

from __future__ import annotations

import bisect
import random
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.shards import CorpusError, Shard, read_manifest, read_shard

DEFAULT_MIX = 4


@dataclass(frozen=True)
class ShardFile:
    """One shard of the joined corpora: its file and number of crops."""

    path: Path
    count: int


@dataclass(frozen=True)
class CorpusInfo:
    """What :func:`open_corpora` found in one folder."""

    folder: Path
    crops: int
    shards: int
    complete: bool


def open_corpora(folders) -> tuple[list[ShardFile], list[CorpusInfo]]:
    """The finished shards of each corpus folder, checked against their manifests (every listed
    shard file present with its recorded size); :class:`CorpusError` naming the file otherwise."""
    shards, infos = [], []
    for folder in map(Path, folders):
        manifest = read_manifest(folder)
        for entry in sorted(manifest.shards, key=lambda e: e.first):
            path = folder / entry.file
            try:
                size = path.stat().st_size
            except OSError:
                raise CorpusError(f"{path}: shard listed in {folder / 'manifest.json'} is missing") from None
            if size != entry.bytes:
                raise CorpusError(f"{path}: {size} bytes, the manifest says {entry.bytes}: not the shard it lists")
            shards.append(ShardFile(path, entry.count))
        infos.append(CorpusInfo(folder, sum(e.count for e in manifest.shards), len(manifest.shards),
                                manifest.complete))
        if not manifest.shards:
            raise CorpusError(f"{folder / 'manifest.json'}: no finished shards yet")
    return shards, infos


@dataclass(frozen=True)
class _Group:
    """Shards mixed together in one pass: their indices into the shard list and their starts
    (in crops) within the group."""

    shards: list[int]
    starts: list[int]
    count: int


class ShardedCorpus:
    """Crops of sharded corpora by global sample index (see the module notes).

    Picklable for DataLoader workers: each process keeps its own small caches.
    """

    def __init__(self, shards: list[ShardFile], seed: int = 0, mix: int = DEFAULT_MIX):
        if not shards:
            raise ValueError("no shards")
        self.shards = list(shards)
        self.seed = seed
        self.mix = max(1, mix)
        self.total = sum(s.count for s in self.shards)
        self._reset()

    @classmethod
    def open(cls, folders, seed: int = 0, mix: int = DEFAULT_MIX) -> "ShardedCorpus":
        shards, _ = open_corpora(folders)
        return cls(shards, seed, mix)

    def _reset(self) -> None:
        self._loaded: OrderedDict[int, Shard] = OrderedDict()
        self._layout: tuple[int, list[_Group], list[int]] | None = None
        self._perm: tuple[tuple[int, int], np.ndarray] | None = None

    def __getstate__(self):
        return {"shards": self.shards, "seed": self.seed, "mix": self.mix, "total": self.total}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset()

    def __len__(self) -> int:
        return self.total

    def locate(self, index: int) -> tuple[int, int]:
        """``(shard, row)`` of the crop that sample ``index`` reads."""
        epoch, position = divmod(index, self.total)
        groups, starts = self._groups(epoch)
        g = bisect.bisect_right(starts, position) - 1
        group = groups[g]
        q = int(self._permutation(epoch, g, group.count)[position - starts[g]])
        k = bisect.bisect_right(group.starts, q) - 1
        return group.shards[k], q - group.starts[k]

    def get(self, index: int) -> tuple[np.ndarray, str]:
        """(RGB crop, label) for sample ``index``."""
        shard, row = self.locate(index)
        return self._shard(shard).decode(row)

    def _groups(self, epoch: int) -> tuple[list[_Group], list[int]]:
        if self._layout is None or self._layout[0] != epoch:
            order = list(range(len(self.shards)))
            random.Random(f"corpus-order:{self.seed}:{epoch}").shuffle(order)
            groups, starts, at = [], [], 0
            for i in range(0, len(order), self.mix):
                members = order[i:i + self.mix]
                offsets = np.cumsum([0] + [self.shards[m].count for m in members]).tolist()
                groups.append(_Group(members, offsets[:-1], offsets[-1]))
                starts.append(at)
                at += offsets[-1]
            self._layout = (epoch, groups, starts)
        return self._layout[1], self._layout[2]

    def _permutation(self, epoch: int, group: int, count: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != (epoch, group):
            rng = np.random.default_rng([self.seed, epoch, group, 0x5EED])
            self._perm = ((epoch, group), rng.permutation(count))
        return self._perm[1]

    def _shard(self, k: int) -> Shard:
        shard = self._loaded.get(k)
        if shard is None:
            info = self.shards[k]
            shard = read_shard(info.path)
            if len(shard) != info.count:
                raise CorpusError(f"{info.path}: {len(shard)} crops, the manifest says {info.count}")
            self._loaded[k] = shard
            while len(self._loaded) > self.mix:
                self._loaded.popitem(last=False)
        else:
            self._loaded.move_to_end(k)
        return shard
