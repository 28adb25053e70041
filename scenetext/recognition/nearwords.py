"""Fast search for the words of a large word list within a small edit distance of a reading.

Scoring every word of a 90,000-word list by edit distance takes milliseconds per reading even in
C++ (``rapidfuzz``); a reading has few close words, so most of that work is wasted. The index
keeps, for every bigram of characters, the words that hold it (sorted arrays, no Python object
per word in the index) and filters by the *q-gram lemma*: one edit destroys at most two of a word's bigrams, so a
word within distance ``k`` of a reading of ``n`` characters shares at least ``n - 1 - 2k`` of the
reading's bigrams, and its length differs by at most ``k``. Only the words that pass (tens to a
few thousand) are scored exactly (``rapidfuzz.distance.Levenshtein``, with the cut-off). The
filter never drops a word within the distance; for a reading too short for its bigrams to say
anything (``n - 1 - 2k < 1``) every word of a near length is scored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .. import mapped

__all__ = ["Near", "WordIndex"]

_BLOCK = 8192  # words per block while the index is built


@dataclass(frozen=True)
class Near:
    """A word of the list, its edit distance to the reading, and its index in the list."""

    word: str
    distance: int
    index: int


class WordIndex:
    """The words of a list, indexed for :meth:`near` (matched exactly as given: fold them first
    for a case-blind search).

    Args:
        words: the words (any Unicode strings), or a 1-D array of ASCII byte strings (as a
            :class:`~scenetext.recognition.lm.WordTable` stores its words), in any order.
    """

    def __init__(self, words: Iterable[str] | np.ndarray):
        if isinstance(words, np.ndarray) and words.dtype.kind == "S":
            keys = words.reshape(-1)
            keys = np.ascontiguousarray(keys)
            table = keys.view(np.uint8).reshape(len(keys), keys.dtype.itemsize)  # a view, not a copy
            if (table >= 128).any():
                raise ValueError("a word index of byte strings takes ASCII words only")
        else:
            words = words.reshape(-1).tolist() if isinstance(words, np.ndarray) else list(words)
            keys = np.array(words, dtype=str) if words else np.zeros(0, dtype="U1")
            table = keys.view(np.uint32).reshape(len(keys), keys.dtype.itemsize // 4)
        self._keys = keys
        self._lengths = (table != 0).sum(1).astype(np.int16)  # fixed-width keys are NUL-padded
        # Bigram codes first * base + second, in the narrowest type that holds them.
        top = int(table.max()) + 1 if table.size else 1
        self._base = top
        self._dtype = np.int16 if top * top < 2 ** 15 else np.int32 if top * top < 2 ** 31 else np.int64
        # (code, word) pairs packed into one int64 each, sorted: the postings of each bigram in
        # word order. Built block by block into memory maps of their own (scenetext.mapped), so
        # neither the temporaries nor the index pin stretches of the heap the models share.
        n = max(len(keys), 1)
        packed = mapped.empty((int((table[:, 1:] != 0).sum()),), np.int64)
        at = 0
        for start in range(0, len(keys), _BLOCK):
            block = table[start:start + _BLOCK]
            present = block[:, 1:] != 0
            codes = self._bigrams(block[:, :-1], block[:, 1:])[present].astype(np.int64)
            packed[at:at + len(codes)] = codes * n + (np.nonzero(present)[0] + start)
            at += len(codes)
        packed.sort()
        self._codes = mapped.empty(packed.shape, self._dtype)
        self._ids = mapped.empty(packed.shape, np.int32)
        np.floor_divide(packed, n, out=self._codes, casting="unsafe")
        np.remainder(packed, n, out=self._ids, casting="unsafe")
        del packed

    def _bigrams(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return first.astype(self._dtype) * self._dtype(self._base) + second.astype(self._dtype)

    def __len__(self) -> int:
        return len(self._keys)

    def word(self, index: int) -> str:
        key = self._keys[index]
        return key.decode("ascii") if isinstance(key, bytes) else str(key)

    def candidates(self, reading: str, max_distance: int) -> np.ndarray:
        """Indices of the words that may lie within ``max_distance`` edits of ``reading``: a
        superset of them, by shared bigrams and length."""
        points = np.frombuffer(reading.encode("utf-32-le"), np.uint32)
        near_length = np.abs(self._lengths - len(points)) <= max_distance
        need = len(points) - 1 - 2 * max_distance
        if need < 1:
            return np.nonzero(near_length)[0]
        pairs = (points[:-1] < self._base) & (points[1:] < self._base)  # others are in no word
        codes = np.unique(self._bigrams(points[:-1][pairs], points[1:][pairs]))
        lo, hi = np.searchsorted(self._codes, codes), np.searchsorted(self._codes, codes, side="right")
        hits = [self._ids[a:b] for a, b in zip(lo.tolist(), hi.tolist())]
        shared = np.bincount(np.concatenate(hits), minlength=len(self._keys)) if hits else np.zeros(len(self._keys))
        return np.nonzero((shared >= need) & near_length)[0]

    def near(self, reading: str, max_distance: int) -> list[Near]:
        """The words within ``max_distance`` edits (Levenshtein: characters inserted, dropped or
        replaced) of ``reading``, nearest first, ties in list order."""
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        if max_distance < 0 or not len(self._keys):
            return []
        ids = self.candidates(reading, max_distance)
        query = reading.encode("utf-8") if self._keys.dtype.kind == "S" else reading
        found = process.extract(query, self._keys[ids].tolist(), scorer=Levenshtein.distance,
                                score_cutoff=max_distance, limit=None)
        found.sort(key=lambda m: (m[1], m[2]))
        return [Near(self.word(int(ids[k])), int(d), int(ids[k])) for _, d, k in found]
