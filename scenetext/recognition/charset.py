"""Character sets for the CTC recogniser.

Index 0 is the CTC blank; characters take indices 1..N. A charset is stored in every
checkpoint, so a checkpoint alone can be loaded. Other scripts come from a text file with one
character per line (or all characters on one line), no code change needed.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

# Digits, Latin letters, ASCII punctuation, space and a few common symbols seen on signs.
DEFAULT_CHARS = (
    string.digits + string.ascii_lowercase + string.ascii_uppercase + string.punctuation + " " + "€£°"
)


@dataclass(frozen=True)
class Charset:
    chars: str

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("charset has repeated characters")
        if not self.chars:
            raise ValueError("charset is empty")

    @classmethod
    def default(cls) -> "Charset":
        return cls(DEFAULT_CHARS)

    @classmethod
    def from_file(cls, path: str | Path) -> "Charset":
        """One character per line, or a single line holding all characters. `<space>` = space."""
        text = Path(path).read_text(encoding="utf-8-sig")
        lines = text.splitlines()
        if len(lines) == 1:
            chars = lines[0]
        else:
            chars = "".join(" " if ln == "<space>" else ln for ln in lines if ln != "")
        seen: dict[str, None] = {}
        for ch in chars:
            seen.setdefault(ch, None)
        return cls("".join(seen))

    @property
    def num_classes(self) -> int:
        """Characters plus the CTC blank."""
        return len(self.chars) + 1

    @property
    def _index(self) -> dict[str, int]:
        idx = self.__dict__.get("_idx")
        if idx is None:
            idx = {c: i + 1 for i, c in enumerate(self.chars)}
            object.__setattr__(self, "_idx", idx)
        return idx

    def covers(self, text: str) -> bool:
        index = self._index
        return all(c in index for c in text)

    def encode(self, text: str) -> list[int]:
        """Map text to class indices; raises KeyError on a character outside the charset."""
        index = self._index
        return [index[c] for c in text]

    def decode(self, indices) -> str:
        chars = self.chars
        return "".join(chars[i - 1] for i in indices if 0 < i <= len(chars))

    def filter(self, text: str) -> str:
        index = self._index
        return "".join(c for c in text if c in index)
