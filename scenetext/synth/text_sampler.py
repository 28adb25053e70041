"""Random text for synthetic samples: words, numbers, prices, times, dates, phones, codes, URLs.

Real scene text is not only dictionary words; the mix of kinds is configurable with weights.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from pathlib import Path

# Fallback vocabulary so the sampler works with no lexicon file installed (tests, fresh machines).
_FALLBACK_WORDS = (
    "open closed street road avenue coffee hotel bank pharmacy exit entrance parking sale "
    "market bakery restaurant station police taxi stop push pull danger private office "
    "welcome shop store center city park north south east west free new best price only "
    "hello world bar pizza food music book house green red blue black white day night"
).split()

DEFAULT_WEIGHTS = {
    "word": 0.50,
    "number": 0.07,
    "price": 0.05,
    "time": 0.03,
    "date": 0.03,
    "phone": 0.03,
    "code": 0.07,
    "url": 0.03,
    "email": 0.02,
    "punct_word": 0.07,
    "phrase": 0.10,
}

_PUNCT_AROUND = ["{}.", "{},", "{}!", "{}?", "{}:", "({})", '"{}"', "'{}'", "{}'s", "#{}", "{}-", "{}&"]


def load_lexicon(paths=None, min_len: int = 1, max_len: int = 20,
                 allowed: str | None = string.ascii_letters + string.digits + "-'&.") -> list[str]:
    """Words from the readable lexicon files (one word per line; default:
    :func:`~.sources.word_lists`); a built-in list if none.

    Words with characters outside `allowed` are dropped (dictionary files hold accented words
    the default charset cannot spell), and so are possessives ("word's"), which crowd the
    dictionary but are rare on signs."""
    if paths is None:
        from .sources import word_lists

        paths = word_lists()
    ok = set(allowed) if allowed else None
    words: set[str] = set()
    for p in paths:
        p = Path(p)
        if not p.is_file():
            continue
        for line in p.read_text(encoding="utf-8", errors="ignore").splitlines():
            w = line.strip()
            if not (min_len <= len(w) <= max_len) or w.endswith("'s") or " " in w or not w.isprintable():
                continue
            if ok is None or all(c in ok for c in w):
                words.add(w)
    return sorted(words) or list(_FALLBACK_WORDS)


@dataclass
class TextSampler:
    """Draws text strings of several kinds; `weights` maps kind -> relative frequency."""

    lexicon: list[str] = field(default_factory=load_lexicon)
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    max_chars: int = 24

    def __post_init__(self):
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown text kinds: {sorted(unknown)}")
        self._kinds = [k for k, w in self.weights.items() if w > 0]
        self._cum = [self.weights[k] for k in self._kinds]

    def sample(self, rng: random.Random) -> str:
        kind = rng.choices(self._kinds, weights=self._cum)[0]
        for _ in range(10):
            text = getattr(self, "_" + kind)(rng).strip()
            if text and len(text) <= self.max_chars:
                return text
        return self._word(rng)[: self.max_chars]

    # --- kinds -----------------------------------------------------------------------------
    def _cased(self, rng: random.Random, w: str) -> str:
        r = rng.random()
        if r < 0.40:
            return w.lower()
        if r < 0.70:
            return w[:1].upper() + w[1:].lower()
        if r < 0.97:
            return w.upper()
        return w

    def _word(self, rng):
        return self._cased(rng, rng.choice(self.lexicon))

    def _number(self, rng):
        r = rng.random()
        if r < 0.5:
            return str(rng.randint(0, 10 ** rng.randint(1, 5)))
        if r < 0.75:
            return f"{rng.uniform(0, 1000):.{rng.randint(1, 2)}f}"
        return f"{rng.randint(1, 999):,}".replace(",", rng.choice([",", ".", " "])) + "," + f"{rng.randint(0, 999):03d}"

    def _price(self, rng):
        value = f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}" if rng.random() < 0.7 else str(rng.randint(1, 999))
        cur = rng.choice(["$", "€", "£", "$", "$"])
        return f"{cur}{value}" if rng.random() < 0.7 else f"{value}{cur}"

    def _time(self, rng):
        h, m = rng.randint(0, 23), rng.randint(0, 59)
        if rng.random() < 0.3:
            return f"{h % 12 or 12}:{m:02d}{rng.choice(['am', 'pm', 'AM', 'PM', ' AM', ' PM'])}"
        if rng.random() < 0.3:
            return f"{h:02d}:{m:02d}-{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        return f"{h:02d}:{m:02d}"

    def _date(self, rng):
        d, mo, y = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1950, 2030)
        sep = rng.choice(["/", ".", "-"])
        if rng.random() < 0.3:
            month = rng.choice("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
            return f"{d} {month} {y}"
        return f"{d:02d}{sep}{mo:02d}{sep}{y if rng.random() < 0.6 else y % 100:02d}"

    def _phone(self, rng):
        digits = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
        forms = [
            f"({digits(3)}) {digits(3)}-{digits(4)}",
            f"{digits(3)}-{digits(3)}-{digits(4)}",
            f"+{rng.randint(1, 99)} {digits(3)} {digits(4)}",
            f"{digits(4)} {digits(6)}",
            f"{digits(3)}.{digits(3)}.{digits(4)}",
        ]
        return rng.choice(forms)

    def _code(self, rng):
        letters = string.ascii_uppercase
        forms = [
            lambda: rng.choice(letters) + str(rng.randint(1, 99)),
            lambda: f"{rng.choice(letters)}-{rng.randint(1, 999)}",
            lambda: f"{rng.randint(1, 24)}/{rng.randint(1, 7)}",
            lambda: "".join(rng.choice(letters + string.digits) for _ in range(rng.randint(3, 8))),
            lambda: f"{rng.choice(letters)}{rng.choice(letters)}{rng.randint(10, 9999)}",
            lambda: f"No.{rng.randint(1, 200)}",
            lambda: f"{rng.randint(1, 100)}%",
            lambda: f"#{rng.randint(1, 999)}",
        ]
        return rng.choice(forms)()

    def _url(self, rng):
        w = rng.choice(self.lexicon).lower()
        tld = rng.choice(["com", "org", "net", "co.uk", "de", "info", "io"])
        return rng.choice([f"www.{w}.{tld}", f"{w}.{tld}", f"WWW.{w.upper()}.{tld.upper()}"])

    def _email(self, rng):
        a, b = rng.choice(self.lexicon).lower(), rng.choice(self.lexicon).lower()
        return f"{a}@{b}.{rng.choice(['com', 'org', 'net'])}"

    def _punct_word(self, rng):
        return rng.choice(_PUNCT_AROUND).format(self._word(rng))

    def _phrase(self, rng):
        n = rng.randint(2, 3)
        case = rng.random()
        words = [rng.choice(self.lexicon) for _ in range(n)]
        if case < 0.35:
            words = [w.upper() for w in words]
        elif case < 0.7:
            words = [w[:1].upper() + w[1:].lower() for w in words]
        else:
            words = [w.lower() for w in words]
        return " ".join(words)
