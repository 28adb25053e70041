"""CTC prefix beam search re-ranked by a language prior (``Reader(lm=True)``, ``--lm``).

The prior may only choose among readings the frames support, and only move away from the
greedy reading (the reading as read) to one made of known words:

* Each frame follows only its ``per_frame`` best classes within ``margin`` nats of its best one,
  so every character of every candidate is one that some frame shows; a crop whose frames are
  all sure (one class each) keeps its greedy reading without a search.
* A prefix beam search over the followed classes gives the ``beam_width`` best readings, each
  scored by its best alignment's log-probability (the score greedy decoding maximises, so the
  greedy reading is always the first of them).
* An alternative is considered only when its words are all in the prior's word list and it is at
  most ``margin`` nats less likely to the eye than the greedy reading. The reading kept is the
  one, of the greedy reading and those, with the highest

      visual log-probability + weight * (prior log-probability + char_bonus * letters and digits)

  where the prior (:mod:`scenetext.recognition.lm`) scores the case-folded view without
  punctuation: two readings that differ only in case or punctuation differ only to the eye. The
  reading keeps the case and punctuation it was read with, and an alternative with a punctuation
  mark the greedy reading lacks is not considered unless the mark stands beside a digit (``$30``
  for ``S30``): the prior sees a letter read as a mark (``FEND!`` for ``FENDI``, ``LEVEL?`` for
  ``LEVEL2``) as a letter dropped, so it would pick such marks for the words it knows.

A reading that is still not a word after that is looked up among the prior's words
(:meth:`PriorDecoder.near_word`, on by default): a beam of a few readings rarely holds a word two
unsure characters away (``Resuits``, ``Churistnas``), so the words of the list within one edit
(two, for readings of six letters or more; :mod:`.nearwords`) of the reading's letters are scored
against the frames, and one replaces the reading when every character it changes or drops was
read unsure (confidence below ``near_unsure``), every character it has sits on frames that show
it (as above), it is at most ``near_margin`` nats less likely to the eye, and it scores higher by
the rule above. Readings with digits, shorter than ``near_min_length`` letters or already words
are not looked up.

So a confident reading of a code, a price or a name stays as read: an alternative more than
``margin`` nats less likely to the eye is never considered, nor is one that is not a known word,
however likely the prior finds it, nor a near word that changes a character read surely; and at
``weight=0`` the reading is the greedy one. A reading
the prior changed gets its characters' frames and confidences from its best alignment
(:func:`align`): its confidence is still the visual one.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .charset import Charset
from .decode import Decoded, greedy_decode
from .lm import WordPrior

__all__ = ["Candidate", "PriorDecoder", "align", "alignment_logps", "check_lm", "lm_decoder", "prefix_beam"]

_NEG = -math.inf


@dataclass(frozen=True)
class Candidate:
    """A reading the frames support: its class indices and the log-probability of its best alignment."""

    labels: tuple[int, ...]
    logp: float


def prefix_beam(log_probs: np.ndarray, beam_width: int = 8, margin: float = 3.0, per_frame: int = 4,
                follow: np.ndarray | None = None) -> list[Candidate]:
    """The best readings of a CTC prefix search over ``log_probs`` (T, classes; blank 0), best
    first, each scored by its best alignment (so the greedy reading comes first).

    Each frame follows only its ``per_frame`` best classes, and of those only the ones within
    ``margin`` nats of its best class (``follow``, when given: which classes each frame follows).
    A frame that follows only the blank ends every prefix in a blank, after which the frames to
    come extend every prefix alike: the search runs on each stretch between such frames on its
    own (:func:`_stretch_beam`) and joins the stretches' best readings, keeping ``beam_width``.
    """
    T = log_probs.shape[0]
    if T == 0:
        return [Candidate((), 0.0)]
    if follow is None:
        follow = _followed(log_probs, margin, per_frame)
    frames, classes = np.nonzero(follow)
    steps: list[list[tuple[int, float]]] = [[] for _ in range(T)]
    for t, c, p in zip(frames.tolist(), classes.tolist(), log_probs[frames, classes].tolist()):
        steps[t].append((c, p))
    joined: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    shift = 0.0  # log-probability of the blank-only frames, common to every prefix
    t = 0
    while t < T:
        if len(steps[t]) == 1 and steps[t][0][0] == 0:
            shift += steps[t][0][1]
            t += 1
            continue
        end = t + 1
        while end < T and not (len(steps[end]) == 1 and steps[end][0][0] == 0):
            end += 1
        options = _stretch_beam(steps[t:end], beam_width)
        if len(options) == 1:
            labels, logp = options[0]
            joined = [(a + labels, pa + logp) for a, pa in joined]
        else:
            joined = _unique([(a + b, pa + pb) for a, pa in joined for b, pb in options], beam_width)
        t = end
    return [Candidate(labels, logp + shift) for labels, logp in joined]


def _followed(log_probs: np.ndarray, margin: float, per_frame: int) -> np.ndarray:
    """Which classes each frame follows: its ``per_frame`` best, within ``margin`` of its best."""
    follow = log_probs >= log_probs.max(1, keepdims=True) - margin
    C = log_probs.shape[1]
    if per_frame < C:
        follow &= log_probs >= np.partition(log_probs, C - per_frame, axis=1)[:, C - per_frame, None]
    return follow


def _unique(readings: list[tuple[tuple[int, ...], float]], limit: int) -> list[tuple[tuple[int, ...], float]]:
    """The ``limit`` best readings, best first, each once (with its best score)."""
    merged: dict[tuple[int, ...], float] = {}
    for labels, logp in readings:
        if logp > merged.get(labels, _NEG):
            merged[labels] = logp
    return sorted(merged.items(), key=lambda kv: -kv[1])[:limit]


def _stretch_beam(stretch: list[list[tuple[int, float]]], beam_width: int) -> list[tuple[tuple[int, ...], float]]:
    """Prefix beam search over a stretch of frames that starts after a blank (or at the start);
    each frame is given as the (class, log-probability) pairs it follows. Returns (labels,
    log-probability) pairs."""
    if len(stretch) == 1:  # one frame: each class it follows is a reading of its own
        return [((c,) if c else (), p) for c, p in stretch[0]]
    # prefix -> best alignment ending in a blank, and ending in its last character
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG)}
    for steps in stretch:
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            best = pb if pb > pnb else pnb
            last = prefix[-1] if prefix else -1
            for c, p in steps:
                if c == 0:
                    cur = nxt.setdefault(prefix, [_NEG, _NEG])
                    if best + p > cur[0]:
                        cur[0] = best + p
                    continue
                if c == last:
                    cur = nxt.setdefault(prefix, [_NEG, _NEG])
                    if pnb + p > cur[1]:
                        cur[1] = pnb + p  # the same character held over another frame
                    if pb == _NEG:
                        continue
                    grown, via = prefix + (c,), pb + p  # the character again, after a blank
                else:
                    grown, via = prefix + (c,), best + p
                cur = nxt.setdefault(grown, [_NEG, _NEG])
                if via > cur[1]:
                    cur[1] = via
        if len(nxt) > beam_width:
            ranked = sorted(nxt.items(), key=lambda kv: -max(kv[1]))[:beam_width]
            beams = {k: (v[0], v[1]) for k, v in ranked}
        else:
            beams = {k: (v[0], v[1]) for k, v in nxt.items()}
    return [(prefix, max(pb, pnb)) for prefix, (pb, pnb) in beams.items()]


def align(log_probs: np.ndarray, labels: tuple[int, ...]) -> tuple[list[tuple[int, int]], list[float]]:
    """The best CTC alignment of ``labels`` to the frames: each label's frame span ``[start, end)``
    and confidence (its highest frame probability within the span), as greedy decoding gives them.
    Empty lists when the labels cannot be aligned (more labels than frames allow)."""
    T, L = log_probs.shape[0], len(labels)
    if L == 0 or T == 0:
        return [], []
    ext = [0] * (2 * L + 1)  # blank, label, blank, label, ..., blank
    ext[1::2] = labels
    S = len(ext)
    emit = log_probs[:, ext].tolist()
    # A label state may also be entered from two states back: the label before, when it differs.
    skip = [s >= 3 and s % 2 == 1 and ext[s] != ext[s - 2] for s in range(S)]
    score = [_NEG] * S
    score[0], score[1] = emit[0][0], emit[0][1]
    back = [[0] * S]
    for t in range(1, T):
        e = emit[t]
        new, step = [_NEG] * S, [0] * S
        for s in range(S):
            best, k = score[s], 0
            if s >= 1 and score[s - 1] > best:
                best, k = score[s - 1], 1
            if skip[s] and score[s - 2] > best:
                best, k = score[s - 2], 2
            new[s] = best + e[s]
            step[s] = k
        score = new
        back.append(step)
    state = S - 1 if S == 1 or score[S - 1] >= score[S - 2] else S - 2
    if score[state] == _NEG:
        return [], []
    states = [0] * T
    for t in range(T - 1, -1, -1):
        states[t] = state
        state -= back[t][state]
    frames: list[tuple[int, int]] = []
    confs: list[float] = []
    for k in range(L):
        at = [t for t in range(T) if states[t] == 2 * k + 1]
        frames.append((at[0], at[-1] + 1))
        confs.append(math.exp(max(emit[t][2 * k + 1] for t in at)))
    return frames, confs


@dataclass
class PriorDecoder:
    """CTC decoding re-ranked by a language prior (see the module notes). The defaults were
    chosen on the crops held out of the recogniser's training sets (``benchmarks/rec_heldout.py``).

    Args:
        prior: the :class:`~scenetext.recognition.lm.WordPrior` (e.g. ``english_prior()``).
        weight: how much the prior's log-probability counts beside the visual one (0: not at all).
        margin: nats: how much less likely to the eye than the best reading an alternative may be
            and still be considered; also which classes each frame follows.
        beam_width: prefixes kept at each frame.
        per_frame: classes each frame follows at most.
        char_bonus: nats of prior per letter or digit, against the prior's leaning to shorter readings.
        near_words: look a reading that is not a word up among the prior's words (:meth:`near_word`).
        near_margin: nats: how much less likely to the eye than the reading a near word may be.
        near_unsure: a near word may only change or drop characters read with a confidence below this.
        near_min_length: readings of fewer letters are not looked up (short words are too many
            edits apart from each other for their neighbours to say anything).
        near_limit: near words scored against the frames, the most frequent first.
    """

    prior: WordPrior
    weight: float = 0.7
    margin: float = 3.0
    beam_width: int = 8
    per_frame: int = 4
    char_bonus: float = 1.0
    near_words: bool = True
    near_margin: float = 8.0
    near_unsure: float = 0.8
    near_min_length: int = 4
    near_limit: int = 10

    def __post_init__(self):
        for name in ("weight", "margin", "char_bonus", "near_margin", "near_unsure"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.beam_width < 1 or self.per_frame < 1 or self.near_limit < 1:
            raise ValueError("beam_width, per_frame and near_limit must be at least 1")
        self._index = None  # the prior's words, indexed for near_word on first use

    def decode(self, log_probs: np.ndarray, charset: Charset) -> Decoded:
        """The reading of one crop's frames (T, classes; blank 0)."""
        greedy = greedy_decode(log_probs, charset)
        if log_probs.shape[0] == 0:
            return greedy
        follow = _followed(log_probs, self.margin, self.per_frame)
        if not (follow.sum(1) > 1).any():
            return greedy  # every frame is sure: the greedy reading is the only one within the margin
        reading = self._beam_reading(log_probs, charset, greedy, follow)
        if self.near_words and self.weight > 0:
            return self.near_word(log_probs, charset, reading, follow) or reading
        return reading

    def _beam_reading(self, log_probs: np.ndarray, charset: Charset, greedy: Decoded, follow: np.ndarray) -> Decoded:
        candidates = prefix_beam(log_probs, self.beam_width, follow=follow)
        read = tuple(charset.encode(greedy.text))
        read_logp = next((c.logp for c in candidates if c.labels == read), candidates[0].logp)
        as_read = self.prior.score(greedy.text)
        best = read_logp + self.weight * (as_read.logp + self.char_bonus * as_read.chars)
        read_marks = Counter(ch for ch in greedy.text if _is_mark(ch))
        chosen: tuple[str, Candidate] | None = None
        for c in candidates:
            if c.labels == read or c.logp < read_logp - self.margin:
                continue
            text = charset.decode(c.labels)
            if _adds_punctuation(text, read_marks):
                continue  # the prior is blind to punctuation: it cannot be what makes a letter a mark
            score = self.prior.score(text)
            if not score.known:
                continue
            total = c.logp + self.weight * (score.logp + self.char_bonus * score.chars)
            if total > best:
                chosen, best = (text, c), total
        if chosen is None:
            return greedy
        text, c = chosen
        return _aligned(log_probs, text, c.labels, c.logp)

    def near_word(self, log_probs: np.ndarray, charset: Charset, reading: Decoded,
                  follow: np.ndarray | None = None) -> Decoded | None:
        """A word of the prior's list near ``reading`` (a reading of these frames) that should
        replace it (see the module notes), or None. ``follow``: which classes each frame follows
        (default: by ``margin`` and ``per_frame``)."""
        text = reading.text
        start, end = 0, len(text)
        while start < end and not text[start].isalnum():
            start += 1
        while end > start and not text[end - 1].isalnum():
            end -= 1
        core = text[start:end]
        if len(core) < self.near_min_length or not (core.isascii() and core.isalpha()):
            return None
        as_read = self.prior.score(text)
        if as_read.known or len(reading.char_confidences) != len(text):
            return None
        from rapidfuzz.distance import Levenshtein

        folded = core.lower()
        near = self._words().near(folded, 1 if len(core) < 6 else 2)
        near = [n.word for n in near if n.distance > 0 and n.word.isalpha()]  # not words with digits or '
        if not near:
            return None
        near.sort(key=lambda w: -self.prior.frequencies.get(w, 0.0))
        options = []
        for word in near[:self.near_limit]:
            ops = Levenshtein.editops(folded, word)
            if any(op.tag != "insert" and reading.char_confidences[start + op.src_pos] >= self.near_unsure for op in ops):
                continue  # it would change or drop a character read surely
            options += [text[:start] + cased + text[end:] for cased in _casings(word, core)]
        if not options:
            return None
        labels = [tuple(charset.encode(o)) for o in options]
        logps = alignment_logps(log_probs, [tuple(charset.encode(text))] + labels)
        read_logp, logps = logps[0], logps[1:]
        best = read_logp + self.weight * (as_read.logp + self.char_bonus * as_read.chars)
        ranked = []
        for option, option_labels, logp in zip(options, labels, logps):
            if logp < read_logp - self.near_margin:
                continue
            score = self.prior.score(option)
            total = logp + self.weight * (score.logp + self.char_bonus * score.chars)
            if total > best:
                ranked.append((total, option, option_labels, logp))
        if follow is None:
            follow = _followed(log_probs, self.margin, self.per_frame)
        for _, option, option_labels, logp in sorted(ranked, key=lambda r: -r[0]):
            found = _aligned(log_probs, option, option_labels, logp)
            if found.char_frames and all(follow[a:b, c].any() for c, (a, b) in zip(option_labels, found.char_frames)):
                return found  # every character sits on frames that show it
        return None

    def _words(self):
        """The prior's words, indexed (built on first use; a word table's array is indexed as it
        is, with no copy and no Python object per word)."""
        if self._index is None:
            from .lm import WordTable
            from .nearwords import WordIndex

            table = self.prior.frequencies
            if isinstance(table, WordTable):
                self._index = WordIndex(table.arrays()[0])
            else:
                self._index = WordIndex([w for w in table if w.isascii() and w.isalpha()])
        return self._index


def _is_mark(ch: str) -> bool:
    """A punctuation mark the prior does not see: neither a letter, a digit, a space nor an
    apostrophe (which the prior keeps inside words)."""
    return not (ch.isalnum() or ch.isspace() or ch == "'")


def _adds_punctuation(text: str, read_marks: Counter) -> bool:
    """Whether ``text`` has a mark (:func:`_is_mark`) more often than the reading as read, whose
    marks are ``read_marks``, other than one beside a digit (``$30``, ``2.50``, ``10%``: marks of
    numbers, which the prior scores as numbers)."""
    def by_digit(i: int) -> bool:
        return (i > 0 and text[i - 1].isdigit()) or (i + 1 < len(text) and text[i + 1].isdigit())

    return bool(Counter(ch for i, ch in enumerate(text) if _is_mark(ch) and not by_digit(i)) - read_marks)


def _casings(word: str, core: str) -> list[str]:
    """``word`` (lower case) written in the case pattern of the reading ``core``: all capitals,
    all small, a capital first; any of the three for a mixed reading."""
    if core.isupper():
        return [word.upper()]
    if core.islower():
        return [word]
    if core[:1].isupper() and core[1:].islower():
        return [word.capitalize()]
    return [word, word.upper(), word.capitalize()]


def _aligned(log_probs: np.ndarray, text: str, labels: tuple[int, ...], logp: float) -> Decoded:
    """``text`` as a reading of these frames: its characters' frames and visual confidences from
    its best alignment (``logp``: that alignment's log-probability)."""
    frames, confs = align(log_probs, labels)
    if confs:
        conf = float(np.exp(np.mean(np.log(np.maximum(confs, 1e-12)))))
    else:
        conf = float(np.exp(logp / max(log_probs.shape[0], 1)))
    return Decoded(text, conf, confs, frames)


def alignment_logps(log_probs: np.ndarray, label_seqs: list[tuple[int, ...]]) -> list[float]:
    """The log-probability of each label sequence's best CTC alignment to the frames (T,
    classes; blank 0), all sequences at once (``-inf`` where one cannot be aligned)."""
    T = log_probs.shape[0]
    if not label_seqs:
        return []
    S = 2 * max(len(l) for l in label_seqs) + 1
    n = len(label_seqs)
    ext = np.zeros((n, S), np.int64)  # blank, label, blank, label, ..., blank, padded with blanks
    lengths = np.array([2 * len(l) + 1 for l in label_seqs])
    for i, labels in enumerate(label_seqs):
        ext[i, 1:2 * len(labels):2] = labels
    skip = np.zeros((n, S), bool)  # a label state may be entered from two states back, the label before
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    valid = np.arange(S)[None, :] < lengths[:, None]
    emit = np.where(valid[None], log_probs[:, ext], _NEG)  # (T, n, S)
    score = np.full((n, S), _NEG)
    score[:, :2] = emit[0, :, :2]
    shifted1, shifted2 = np.full((n, S), _NEG), np.full((n, S), _NEG)
    for t in range(1, T):
        shifted1[:, 1:] = score[:, :-1]
        shifted2[:, 2:] = np.where(skip[:, 2:], score[:, :-2], _NEG)
        score = np.maximum(np.maximum(score, shifted1), shifted2) + emit[t]
    rows = np.arange(n)
    last = score[rows, lengths - 1]
    before = np.where(lengths > 1, score[rows, np.maximum(lengths - 2, 0)], _NEG)
    return np.maximum(last, before).tolist()


def check_lm(value) -> None:
    """Refuse an ``lm`` option :func:`lm_decoder` cannot use (ValueError, with the reason), without
    loading the prior; also where the package ships no English prior and the ``wordfreq`` package
    it would be built from is not installed."""
    if value is None or value is False or isinstance(value, PriorDecoder):
        return
    if isinstance(value, str) and value != "en":
        raise ValueError(f"lm {value!r}: the language prior is 'en' (English word frequencies)")
    if not isinstance(value, (bool, str, int, float)):
        raise ValueError(f"lm must be True, 'en', a weight or a PriorDecoder, not {type(value).__name__}")
    if not isinstance(value, (bool, str)) and not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"lm weight must be a finite number >= 0, got {value!r}")
    import importlib.util

    from .lm import shipped_english_prior

    if shipped_english_prior() is None and importlib.util.find_spec("wordfreq") is None:
        raise ValueError("the language prior needs wordfreq: pip install wordfreq")


def lm_decoder(value) -> PriorDecoder | None:
    """The decoder an ``lm`` option asks for: None for off (None, False), the English prior with
    the default settings (True, ``"en"``) or at a weight (a number), or the given decoder. The
    English prior is loaded the first time one is asked for."""
    check_lm(value)
    if value is None or value is False:
        return None
    if isinstance(value, PriorDecoder):
        return value
    from .lm import english_prior

    if isinstance(value, (bool, str)):
        return PriorDecoder(english_prior())
    return PriorDecoder(english_prior(), weight=float(value))
