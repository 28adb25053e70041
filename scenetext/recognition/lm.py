"""A language prior for the recogniser: English word frequencies and a character n-gram model.

The prior gives the log-probability of a reading's *case-folded view* (:func:`tokens`): the text
lower-cased, every digit written as ``0`` (so the prior prefers no number to another; it only
weighs letters against digits, as in ``SCH00L``/``SCHOOL``), punctuation left out, cut into words
at white space. Two readings that differ only in case or punctuation get the same prior: the
prior has no say on them. Each token's probability is a mixture of its word frequency and a
character n-gram model of the same word list, so an unknown token (a code, a name) still gets a
fair probability:

    P(token) = word_share * frequency(token) + (1 - word_share) * P_ngram(token)

The word frequencies are those of the ``wordfreq`` package (English, shipped inside its wheel; a
dependency of scenetext): the ~94,000 words of ASCII letters, digits and apostrophes seen
at least once in ten million words. The n-gram model (order 4, interpolated Witten-Bell) is
trained on the same words, weighted by their Zipf value. Both ship inside the package, built
(:func:`build_english_prior`, ``scenetext train prior``) and stored as plain arrays
(``scenetext/models/prior-en.npz``, :meth:`WordPrior.save`), so a process loads them in ~40 ms
with no Python object per word (:func:`english_prior`); nothing is downloaded or written.
Building them in the reading process instead takes ~0.7 s and leaves ~15 MB of freed word
objects scattered in its heap. Without the shipped file the prior is built from ``wordfreq``.

How the prior re-ranks readings is :mod:`scenetext.recognition.beam`'s job.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CharNgram", "ENGLISH_PRIOR", "PRIOR_FORMAT", "TextScore", "WordPrior", "WordTable", "build_english_prior",
           "english_prior", "fold", "shipped_english_prior", "tokens", "wordfreq_source"]

#: Symbols of the n-gram model: 0 is the word boundary, then a-z, any digit, the apostrophe and
#: any other letter (accented and non-Latin letters share one symbol).
BOUNDARY, DIGIT, APOSTROPHE, OTHER = 0, 27, 28, 29
NUM_SYMBOLS = 30
#: Version of the file layout :meth:`WordPrior.save` writes.
PRIOR_FORMAT = 1
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_DIGITS = re.compile(r"\d")
_PUNCTUATION = re.compile(r"[^\w\s']|_")


def fold(text: str) -> str:
    """Lower case, every digit as ``0``."""
    return _DIGITS.sub("0", text.lower())


def tokens(text: str) -> list[str]:
    """The tokens the prior scores in ``text``: its folded words (split at white space) with
    punctuation left out, apostrophes kept inside a word (``e-mail`` -> ``email``, ``$2.50`` ->
    ``000``, ``don't`` -> ``don't``)."""
    return _TOKEN.findall(_PUNCTUATION.sub("", fold(text)))


def _symbol_table() -> np.ndarray:
    table = np.full(128, OTHER, np.int64)
    table[ord("a"): ord("z") + 1] = np.arange(1, 27)
    table[ord("0"): ord("9") + 1] = DIGIT
    table[ord("'")] = APOSTROPHE
    return table


_SYMBOLS = _symbol_table()


def _symbols(token: str) -> list[int]:
    return [int(_SYMBOLS[o]) if (o := ord(ch)) < 128 else OTHER for ch in token]


def _ngram_counts(words: Sequence[str], weights: np.ndarray, order: int) -> np.ndarray:
    """Weighted counts of the n-grams of the folded ``words``, flat (index: the symbols in base
    :data:`NUM_SYMBOLS`); each word padded with ``order - 1`` boundaries and ending in one."""
    S = NUM_SYMBOLS
    text = "".join("\x01" * (order - 1) + fold(w) + "\x02" for w in words)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    seq = np.where(codes < 128, _SYMBOLS[np.minimum(codes, 127)], OTHER)
    seq[(codes == 1) | (codes == 2)] = BOUNDARY
    lengths = np.array([len(fold(w)) + 1 for w in words], np.int64)  # symbols predicted in each word
    ends = np.flatnonzero(codes != 1)  # an n-gram ends at every symbol but the padding
    flat = np.zeros(len(ends), np.int64)
    for k in range(order):
        flat = flat * S + seq[ends - (order - 1) + k]
    return np.bincount(flat, weights=np.repeat(weights, lengths), minlength=S ** order)


@dataclass(frozen=True)
class CharNgram:
    """A character n-gram model of tokens: ``table[h1, ..., c]`` is ``log P(c | h1...)`` over
    :data:`NUM_SYMBOLS` symbols, the history padded with boundaries at the start of a token and a
    boundary predicted at its end (so the probabilities of all tokens add up to one)."""

    order: int
    table: np.ndarray

    @classmethod
    def train(cls, words: Sequence[str], weights: Sequence[float] | np.ndarray, order: int = 4,
              chunk: int = 20000) -> CharNgram:
        """Counts of every n-gram of the folded ``words`` (each counted ``weight`` times),
        interpolated with lower orders by Witten-Bell; a uniform distribution under order 1."""
        if order < 1:
            raise ValueError("order must be at least 1")
        S = NUM_SYMBOLS
        weights = np.asarray(weights, np.float64)
        counts = np.zeros(S ** order)
        for start in range(0, len(words), chunk):  # in chunks: a few MB of arrays at a time
            counts += _ngram_counts(words[start: start + chunk], weights[start: start + chunk], order)
        counts = counts.reshape((S,) * order)
        p = np.full(S, 1.0 / S)  # order 0: uniform
        for k in range(1, order + 1):
            c = counts.sum(axis=tuple(range(order - k))) if k < order else counts  # axes: k-1 history symbols, c
            total = c.sum(-1, keepdims=True)
            types = (c > 0).sum(-1, keepdims=True)
            # p (order k-1) broadcasts over the oldest history symbol: P_{k-1}(c | the newer k-2).
            p = np.where(total > 0, (c + types * p) / np.maximum(total + types, 1e-12), p)
        return cls(order, np.log(np.maximum(p, 1e-30)).astype(np.float32))

    def logp(self, token: str) -> float:
        """``log P(token)`` of a folded token, its end included."""
        n = self.order
        seq = [BOUNDARY] * (n - 1) + _symbols(token) + [BOUNDARY]
        table = self.table
        return float(sum(table[tuple(seq[i - n + 1: i + 1])] for i in range(n - 1, len(seq))))


class WordTable(Mapping):
    """A read-only word -> frequency mapping held in two arrays (the words, sorted, as fixed-width
    UTF-8 bytes; their frequencies), looked up by binary search.

    A dict of the ~94,000 English words takes ~15 MB of small objects, and building it from
    wordfreq's lists leaves their freed objects scattered among the kept ones, so the process
    keeps ~60 MB; the arrays take ~3 MB and let all of those go."""

    def __init__(self, frequencies: Mapping[str, float]):
        items = sorted((word.encode("utf-8"), float(freq)) for word, freq in frequencies.items())
        self._keys = np.array([k for k, _ in items], dtype=f"S{max((len(k) for k, _ in items), default=1)}")
        self._values = np.fromiter((v for _, v in items), np.float64, len(items))

    @classmethod
    def from_arrays(cls, keys: np.ndarray, values: np.ndarray) -> WordTable:
        """The table of :meth:`arrays` (as a prior file stores it), checked: byte strings in
        strictly increasing order, one finite frequency each."""
        keys, values = np.asarray(keys), np.asarray(values, np.float64)
        if keys.dtype.kind != "S" or keys.ndim != 1 or values.shape != keys.shape:
            raise ValueError("a word table is a 1-D array of byte strings and one frequency per word")
        if len(keys) > 1 and not bool((keys[1:] > keys[:-1]).all()):
            raise ValueError("a word table's words must be sorted and distinct")
        if not bool(np.isfinite(values).all()):
            raise ValueError("a word table's frequencies must be finite")
        table = cls.__new__(cls)
        table._keys, table._values = keys, values
        return table

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The words (sorted, fixed-width UTF-8 bytes) and their frequencies."""
        return self._keys, self._values

    def _index(self, word: object) -> int:
        if not isinstance(word, str) or not len(self._keys):
            return -1
        key = word.encode("utf-8")
        if len(key) > self._keys.dtype.itemsize or key.endswith(b"\0"):
            return -1
        i = int(np.searchsorted(self._keys, key))
        return i if i < len(self._keys) and self._keys[i] == key else -1

    def __getitem__(self, word: str) -> float:
        i = self._index(word)
        if i < 0:
            raise KeyError(word)
        return float(self._values[i])

    def get(self, word, default=None):
        i = self._index(word)
        return default if i < 0 else float(self._values[i])

    def __contains__(self, word: object) -> bool:
        return self._index(word) >= 0

    def __iter__(self):
        return (k.decode("utf-8") for k in self._keys)

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(frozen=True)
class TextScore:
    """A text as the prior sees it: ``logp``, the log-probability of its folded view; ``known``,
    whether it has words and every one is in the word list; ``chars``, the characters of its
    words (punctuation and spaces left out)."""

    logp: float
    known: bool
    chars: int


class WordPrior:
    """``log P`` of a reading's folded view (see the module notes): word frequencies mixed with a
    character n-gram model. Scores are cached (the last ``cache_size`` texts and tokens)."""

    def __init__(self, frequencies: Mapping[str, float], ngram: CharNgram, word_share: float = 0.5,
                 name: str = "", cache_size: int = 1 << 13):
        if not 0.0 <= word_share <= 1.0:
            raise ValueError("word_share must be from 0 to 1")
        self.frequencies = frequencies
        self.ngram = ngram
        self.word_share = float(word_share)
        self.name = name
        self._token_cache = functools.lru_cache(maxsize=cache_size)(self._token_logp)
        self._text_cache = functools.lru_cache(maxsize=cache_size)(self._score)

    @classmethod
    def from_words(cls, frequencies: Mapping[str, float], order: int = 4, **kwargs) -> WordPrior:
        """A prior of a word list with its frequencies (they should add up to about one; keys are
        folded and merged), its n-gram model trained on the same words weighted by Zipf value."""
        folded: dict[str, float] = {}
        for word, freq in frequencies.items():
            if freq > 0 and tokens(word) == [key := fold(word)]:
                folded[key] = folded.get(key, 0.0) + float(freq)
        words = list(folded)
        zipf = np.log10(np.maximum(np.fromiter(folded.values(), np.float64, len(words)), 1e-12)) + 9.0
        ngram = CharNgram.train(words, np.maximum(zipf - 1.0, 0.5), order=order)
        return cls(WordTable(folded), ngram, **kwargs)

    def save(self, path, source: str = "") -> None:
        """Write the prior as plain arrays (NumPy's ``.npz``, no pickled objects): its words,
        their frequencies, the n-gram table and its settings; ``source`` says where the words
        came from. :meth:`load` reads it back."""
        import io

        from ..imageio import atomic_write_bytes

        table = self.frequencies if isinstance(self.frequencies, WordTable) else WordTable(self.frequencies)
        keys, values = table.arrays()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, kind=np.array("prior"), format=np.array(PRIOR_FORMAT), name=np.array(self.name),
                            source=np.array(source), word_share=np.array(self.word_share), keys=keys, values=values,
                            order=np.array(self.ngram.order), ngram=self.ngram.table)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path, **kwargs) -> WordPrior:
        """A prior written by :meth:`save`. Only arrays are read (never pickled objects); a file
        that is not such a prior raises ``ValueError`` naming it."""
        try:
            if not os.path.isfile(path):  # not opened at all: a FIFO or device could block
                raise ValueError("not a regular file")
            with np.load(path, allow_pickle=False) as z:
                fields = {name: z[name] for name in z.files}
            if str(fields["kind"]) != "prior" or int(fields["format"]) != PRIOR_FORMAT:
                raise ValueError(f"not a prior file of format {PRIOR_FORMAT}")
            order, ngram = int(fields["order"]), fields["ngram"].astype(np.float32, copy=False)
            if ngram.shape != (NUM_SYMBOLS,) * order:
                raise ValueError(f"its n-gram table has shape {ngram.shape}, not {(NUM_SYMBOLS,) * order}")
            table = WordTable.from_arrays(fields["keys"], fields["values"])
            kwargs.setdefault("word_share", float(fields["word_share"]))
            kwargs.setdefault("name", str(fields["name"]))
        except (OSError, KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{path}: cannot load the language prior: {err}".splitlines()[0]) from None
        return cls(table, CharNgram(order, ngram), **kwargs)

    def _token_logp(self, token: str) -> float:
        p_char = math.exp(self.ngram.logp(token))
        p = self.word_share * self.frequencies.get(token, 0.0) + (1.0 - self.word_share) * p_char
        return math.log(max(p, 1e-300))

    def score(self, text: str) -> TextScore:
        """The prior's view of ``text``: its log-probability and whether its words are known."""
        return self._text_cache(text)

    def logp(self, text: str) -> float:
        """``log P`` of the folded view of ``text`` (0 for a text with no tokens)."""
        return self._text_cache(text).logp

    def token_logp(self, token: str) -> float:
        """``log P`` of one token of a folded view (see :func:`tokens`)."""
        return self._token_cache(token)

    def clear_cache(self) -> None:
        """Forget the cached scores."""
        self._token_cache.cache_clear()
        self._text_cache.cache_clear()

    def _score(self, text: str) -> TextScore:
        found = tokens(text)
        return TextScore(sum(self._token_cache(t) for t in found),
                         bool(found) and all(t in self.frequencies for t in found), sum(map(len, found)))


def _wordfreq_english(min_zipf: float = 2.0) -> dict[str, float]:
    """wordfreq's English frequencies of the words made of ASCII letters, digits and apostrophes
    (the others hold letters the recogniser does not read) of at least ``min_zipf`` (2: once in
    ten million words, about 100,000 words; rarer ones changed no held-out reading)."""
    buckets = _wordfreq_buckets("en", int(100 * (9 - min_zipf)) + 1)
    ascii_word = re.compile(r"[a-z0-9']+\Z")
    # Bucket i holds the words of frequency 10 ** (-i / 100) (centibels), as wordfreq reads them.
    return {word: 10.0 ** (-i / 100) for i, bucket in enumerate(buckets) for word in bucket if ascii_word.match(word)}


def _wordfreq_buckets(language: str, count: int) -> list[list[str]]:
    """The word lists of the ``count`` most frequent buckets of wordfreq's ``large_<language>``
    data file.

    The file is read as wordfreq documents its format (a gzipped msgpack list: a header
    ``{"format": "cB", "version": 1}``, then one list of words per centibel), without importing
    wordfreq itself, whose text-processing dependencies would add ~10 MB to every process that
    reads, and only as far as the buckets asked for: the English file holds ~320,000 words, the
    prior keeps ~96,000, and the Python strings of the others, once freed, would stay scattered in
    the process's heap (~20 MB). Where the file is not where wordfreq keeps it, or not in that
    format, through wordfreq's own reader. Not through ``get_frequency_dict`` either way: it would
    keep a second copy in wordfreq's cache."""
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("wordfreq")
    if spec is None:
        raise ImportError("the language prior needs wordfreq: pip install wordfreq")
    folders = list(spec.submodule_search_locations or [])
    path = Path(folders[0]) / "data" / f"large_{language}.msgpack.gz" if folders else None
    try:
        import msgpack
    except ImportError:
        msgpack = None
    if msgpack is not None and path is not None and path.is_file():
        try:
            with gzip.open(path, "rb") as f:
                unpacker = msgpack.Unpacker(f, raw=False)
                size = unpacker.read_array_header()
                header = unpacker.unpack() if size else None
                if isinstance(header, dict) and header.get("format") == "cB" and header.get("version") == 1:
                    return [unpacker.unpack() for _ in range(min(count, size - 1))]
        except (OSError, EOFError, ValueError, msgpack.UnpackException):
            pass
    import wordfreq

    return wordfreq.read_cBpack(wordfreq.available_languages("best")[language])[:count]


#: The shipped English prior's name in the package's model manifest.
ENGLISH_PRIOR = "prior-en"


def build_english_prior() -> WordPrior:
    """The English prior built from ``wordfreq``'s frequencies (what the shipped file holds)."""
    return WordPrior.from_words(_wordfreq_english(), name="en")


def wordfreq_source() -> str:
    """Where :func:`build_english_prior`'s words come from, as a prior file records it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"wordfreq {version('wordfreq')} large_en, Zipf >= 2"
    except PackageNotFoundError:
        return "wordfreq large_en, Zipf >= 2"


def shipped_english_prior():
    """The package's manifest entry for the English prior file, or None where it lists none."""
    from ..shipped import ManifestError, find

    try:
        return find(ENGLISH_PRIOR)
    except ManifestError:
        return None


@functools.lru_cache(maxsize=1)
def english_prior() -> WordPrior:
    """The English prior, loaded on the first call and kept: the file shipped in the package
    (checked against its manifest entry), or, where the package lists none, built from
    ``wordfreq``."""
    from ..shipped import models_dir, verify

    entry = shipped_english_prior()
    return build_english_prior() if entry is None else WordPrior.load(verify(models_dir(), entry))

