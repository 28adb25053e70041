"""CTC decoding: greedy (default), prefix beam search, and lexicon-constrained decoding.

All decoders take per-frame log-probabilities of one crop, shape (T, classes), blank = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .charset import Charset


@dataclass
class Decoded:
    text: str
    confidence: float
    char_confidences: list[float] = field(default_factory=list)
    # Frame span [start, end) of each character; frame t covers input pixels [4t, 4t + 4).
    char_frames: list[tuple[int, int]] = field(default_factory=list)
    # Degrees clockwise the crop was turned before this reading (0, 90, 270; see orientation.py);
    # char_frames are positions in the turned crop.
    rotation: int = 0


def greedy_decode(log_probs: np.ndarray, charset: Charset) -> Decoded:
    """Argmax per frame, merge repeats, drop blanks. Confidence = geometric mean of char probs."""
    T = log_probs.shape[0]
    if T == 0:
        return Decoded("", 0.0)
    best = log_probs.argmax(1)
    best_lp = log_probs[np.arange(T), best]
    chars, confs, frames = [], [], []
    t = 0
    while t < T:
        k = int(best[t])
        end = t + 1
        while end < T and best[end] == k:
            end += 1
        if k != 0:
            chars.append(k)
            confs.append(float(np.exp(best_lp[t:end].max())))
            frames.append((t, end))
        t = end
    text = charset.decode(chars)
    if confs:
        conf = float(np.exp(np.mean(np.log(np.maximum(confs, 1e-12)))))
    else:
        conf = float(np.exp(best_lp.mean()))
    return Decoded(text, conf, confs, frames)


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_decode(log_probs: np.ndarray, charset: Charset, beam_width: int = 10, prune: float = -12.0) -> Decoded:
    """CTC prefix beam search. Characters get positions and confidences from the greedy path
    when the beam agrees with it; otherwise only text and confidence are filled."""
    T, C = log_probs.shape
    beams: dict[tuple, tuple[float, float]] = {(): (0.0, -math.inf)}  # prefix -> (p_blank, p_nonblank)
    for t in range(T):
        lp = log_probs[t]
        candidates = [c for c in range(C) if lp[c] > prune] or [int(lp.argmax())]
        nxt: dict[tuple, list[float]] = {}

        def add(prefix, pb, pnb):
            cur = nxt.setdefault(prefix, [-math.inf, -math.inf])
            cur[0] = _logsumexp(cur[0], pb)
            cur[1] = _logsumexp(cur[1], pnb)

        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            for c in candidates:
                p = float(lp[c])
                if c == 0:
                    add(prefix, total + p, -math.inf)
                    continue
                new = prefix + (c,)
                if prefix and prefix[-1] == c:
                    add(new, -math.inf, pb + p)  # repeated char needs a blank in between
                    add(prefix, -math.inf, pnb + p)  # collapse repeat
                else:
                    add(new, -math.inf, total + p)
        beams = dict(sorted(((k, tuple(v)) for k, v in nxt.items()), key=lambda kv: -_logsumexp(*kv[1]))[:beam_width])
    prefix, (pb, pnb) = next(iter(beams.items()))
    score = _logsumexp(pb, pnb)
    greedy = greedy_decode(log_probs, charset)
    text = charset.decode(prefix)
    conf = float(math.exp(score / max(len(prefix), 1))) if prefix else float(math.exp(score / max(T, 1)))
    if text == greedy.text:
        return Decoded(text, conf, greedy.char_confidences, greedy.char_frames)
    return Decoded(text, min(conf, 1.0))


class Lexicon:
    """A word list for constrained decoding; candidates near the greedy reading are scored by CTC."""

    def __init__(self, words: list[str], max_distance: int = 3, full_search_limit: int = 2000):
        self.words = sorted(set(w for w in words if w))
        self.max_distance = max_distance
        self.full_search_limit = full_search_limit
        self._index = None  # the words lower-cased, indexed on first use (nearwords.WordIndex)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> "Lexicon":
        """The words of a UTF-8 text file, one per line (blank lines skipped).

        Raises:
            ValueError: naming the file, when it is not a regular file (a FIFO is not opened),
                cannot be read, is not UTF-8 text or holds no words.
        """
        from ..imageio import ImageLoadError, check_regular_file

        try:
            check_regular_file(path)
            data = Path(path).read_bytes()
        except ImageLoadError as err:
            raise ValueError(f"lexicon {err}") from None
        except OSError as err:
            raise ValueError(f"lexicon {path}: cannot read file ({err.strerror or err})") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise ValueError(f"lexicon {path}: not a UTF-8 text file (bad byte at offset {err.start})") from None
        if "\0" in text:
            raise ValueError(f"lexicon {path}: not a text file (it holds NUL bytes)")
        words = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if not words:
            raise ValueError(f"lexicon {path}: holds no words (the file is empty or blank)")
        return cls(words, **kwargs)

    def candidates(self, greedy_text: str) -> list[str]:
        """Every word of a short list; of a longer one, the words within ``max_distance`` edits
        of the reading, case-blind."""
        if len(self.words) <= self.full_search_limit:
            return self.words
        if self._index is None:
            from .nearwords import WordIndex

            self._index = WordIndex([w.lower() for w in self.words])
        return [self.words[n.index] for n in sorted(self._index.near(greedy_text.lower(), self.max_distance),
                                                    key=lambda n: n.index)]


def lexicon_decode(log_probs: np.ndarray, charset: Charset, lexicon: Lexicon) -> Decoded:
    """The lexicon word with the highest CTC probability (lowest CTC loss) for these frames."""
    import torch
    import torch.nn.functional as F

    greedy = greedy_decode(log_probs, charset)
    words = [w for w in lexicon.candidates(greedy.text) if charset.covers(w) and 0 < len(w) <= log_probs.shape[0]]
    if not words:
        return greedy
    T = log_probs.shape[0]
    lp = torch.from_numpy(np.ascontiguousarray(log_probs)).float()[:, None, :].expand(T, len(words), -1)
    targets = torch.tensor([i for w in words for i in charset.encode(w)], dtype=torch.long)
    target_lengths = torch.tensor([len(w) for w in words], dtype=torch.long)
    input_lengths = torch.full((len(words),), T, dtype=torch.long)
    losses = F.ctc_loss(lp, targets, input_lengths, target_lengths, blank=0, reduction="none", zero_infinity=False)
    best = int(torch.argmin(losses))
    if not math.isfinite(float(losses[best])):
        return greedy
    word = words[best]
    conf = float(math.exp(-float(losses[best]) / max(len(word), 1)))
    if word == greedy.text:
        return Decoded(word, conf, greedy.char_confidences, greedy.char_frames)
    return Decoded(word, conf)
