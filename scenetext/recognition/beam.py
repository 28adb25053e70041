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
  reading keeps the case and punctuation it was read with.

So a confident reading of a code, a price or a name stays as read: an alternative more than
``margin`` nats less likely to the eye is never considered, nor is one that is not a known word,
however likely the prior finds it; and at ``weight=0`` the reading is the greedy one. A reading
the prior changed gets its characters' frames and confidences from its best alignment
(:func:`align`): its confidence is still the visual one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .charset import Charset
from .decode import Decoded, greedy_decode
from .lm import WordPrior

__all__ = ["Candidate", "PriorDecoder", "align", "check_lm", "lm_decoder", "prefix_beam"]

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
    """

    prior: WordPrior
    weight: float = 0.7
    margin: float = 3.0
    beam_width: int = 8
    per_frame: int = 4
    char_bonus: float = 1.0

    def __post_init__(self):
        for name in ("weight", "margin", "char_bonus"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.beam_width < 1 or self.per_frame < 1:
            raise ValueError("beam_width and per_frame must be at least 1")

    def decode(self, log_probs: np.ndarray, charset: Charset) -> Decoded:
        """The reading of one crop's frames (T, classes; blank 0)."""
        greedy = greedy_decode(log_probs, charset)
        if log_probs.shape[0] == 0:
            return greedy
        follow = _followed(log_probs, self.margin, self.per_frame)
        if not (follow.sum(1) > 1).any():
            return greedy  # every frame is sure: the greedy reading is the only one within the margin
        candidates = prefix_beam(log_probs, self.beam_width, follow=follow)
        read = tuple(charset.encode(greedy.text))
        read_logp = next((c.logp for c in candidates if c.labels == read), candidates[0].logp)
        as_read = self.prior.score(greedy.text)
        best = read_logp + self.weight * (as_read.logp + self.char_bonus * as_read.chars)
        chosen: tuple[str, Candidate] | None = None
        for c in candidates:
            if c.labels == read or c.logp < read_logp - self.margin:
                continue
            text = charset.decode(c.labels)
            score = self.prior.score(text)
            if not score.known:
                continue
            total = c.logp + self.weight * (score.logp + self.char_bonus * score.chars)
            if total > best:
                chosen, best = (text, c), total
        if chosen is None:
            return greedy
        text, c = chosen
        frames, confs = align(log_probs, c.labels)
        if confs:
            conf = float(np.exp(np.mean(np.log(np.maximum(confs, 1e-12)))))
        else:
            conf = float(np.exp(c.logp / max(log_probs.shape[0], 1)))
        return Decoded(text, conf, confs, frames)


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
