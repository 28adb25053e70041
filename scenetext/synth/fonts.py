"""Font discovery for the synthetic renderer, honouring per-face caveats.

Caveats (`resources/fonts-latin-caveats.tsv`, file name -> flags):
- `capsonly`: lower case is drawn as capitals, so labels are upper-cased;
- `missing:XYZ`: those characters have no glyph;
- `lowdiversity`: glyphs barely differ; the face is not used.
Glyph coverage of other characters is checked on first use of a face (a character drawn
with the .notdef box's metrics, or with no ink, counts as missing).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

FONT_EXTENSIONS = {".ttf", ".otf", ".ttc"}
DEFAULT_FONT_DIRS = (Path("/usr/share/fonts"),)
# fonts-aenigma alone ships ~465 techno/display faces: sample it less.
_DOWNWEIGHT = {"aenigma": 0.25}


def read_caveats(text: str | None = None) -> dict[str, set[str]]:
    """Parse `name<TAB>flag[,flag]` lines into {file name: {flags}}."""
    if text is None:
        text = resources.files("scenetext.resources").joinpath("fonts-latin-caveats.tsv").read_text("utf-8")
    caveats: dict[str, set[str]] = {}
    for line in text.splitlines():
        if "\t" not in line:
            continue
        name, flags = line.split("\t", 1)
        caveats[name.strip()] = {f.strip() for f in flags.split(",") if f.strip()}
    return caveats


@dataclass
class FontFace:
    path: Path
    caps_only: bool = False
    missing: frozenset[str] = frozenset()
    weight: float = 1.0
    vetted: bool = False  # listed in (or checked for) the caveats file
    _checked: dict[str, bool] = field(default_factory=dict, repr=False)

    def supports(self, text: str) -> bool:
        """True when every character of `text` has a real glyph in this face.

        Letters and digits are trusted to the caveats list (it was made by checking every
        face); other characters are checked on first use."""
        for ch in set(text):
            if ch in self.missing:
                return False
            if ch == " " or (ch.isascii() and ch.isalnum() and self.vetted):
                continue
            ok = self._checked.get(ch)
            if ok is None:
                ok = self._checked[ch] = _has_glyph(str(self.path), ch)
            if not ok:
                return False
        return True

    def label_for(self, text: str) -> str:
        """What the face actually draws for `text` (caps-only faces draw capitals)."""
        return text.upper() if self.caps_only else text


@functools.lru_cache(maxsize=4096)
def _notdef_metrics(path: str):
    font = load_font(path, 24)
    return font.getbbox("\ue000"), font.getlength("\ue000")


def _has_glyph(path: str, ch: str) -> bool:
    """A glyph exists when it has ink and its metrics differ from the .notdef box's."""
    try:
        font = load_font(path, 24)
        box = font.getbbox(ch)
        metrics = (box, font.getlength(ch))
        notdef = _notdef_metrics(path)
    except Exception:  # unreadable font files, broken glyph programs in a few display fonts
        return False
    if box[2] <= box[0] or box[3] <= box[1]:
        return False
    return metrics != notdef


@functools.lru_cache(maxsize=2048)
def load_font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size=size)


def discover_fonts(dirs=DEFAULT_FONT_DIRS, caveats: dict[str, set[str]] | None = None) -> list[FontFace]:
    """All usable font faces under `dirs` (recursively), caveats applied, sorted by path."""
    # The packaged caveats list covers the faces of the Debian font packages it was made from.
    vetted = caveats is None
    if caveats is None:
        caveats = read_caveats()
    faces = []
    for d in dirs:
        d = Path(d)
        paths = [d] if d.is_file() else sorted(p for p in d.rglob("*") if p.suffix.lower() in FONT_EXTENSIONS)
        for p in paths:
            flags = caveats.get(p.name, set())
            if "lowdiversity" in flags:
                continue
            missing = frozenset("".join(f.split(":", 1)[1] for f in flags if f.startswith("missing:")))
            weight = next((w for key, w in _DOWNWEIGHT.items() if key in str(p).lower()), 1.0)
            faces.append(FontFace(p, caps_only="capsonly" in flags, missing=missing, weight=weight,
                                  vetted=vetted))
    return faces


# Fewer faces than this and synthetic text is drawn in too few styles to read real photos from.
FEW_FONTS = 100


def describe_fonts(dirs=DEFAULT_FONT_DIRS) -> str:
    """One line for a training log: how many faces the renderer will draw with, and a warning
    when they are few (a machine without the Debian font packages ``make fonts`` installs has a
    couple of dozen; with them it has ~1,300)."""
    n = len(discover_fonts(dirs))
    where = ", ".join(str(d) for d in dirs)
    line = f"synthetic text: {n} font faces under {where}"
    if n < FEW_FONTS:
        line += (f"; warning: fewer than {FEW_FONTS}, so synthetic words look alike"
                 " ('make fonts' installs the font packages the renderer is made for)")
    return line


class FontPool:
    """Weighted random choice of faces; falls back to Pillow's built-in scalable font."""

    def __init__(self, faces: list[FontFace]):
        self.faces = faces
        self._weights = [f.weight for f in faces]

    @classmethod
    def from_dirs(cls, dirs=DEFAULT_FONT_DIRS) -> "FontPool":
        return cls(discover_fonts(dirs))

    def __len__(self):
        return len(self.faces)

    def pick(self, rng: random.Random, text: str, tries: int = 8):
        """A face that can draw `text` and the label it draws, or (None, text) for the default font."""
        for _ in range(tries if self.faces else 0):
            face = rng.choices(self.faces, weights=self._weights)[0]
            label = face.label_for(text)
            if face.supports(label):
                return face, label
        return None, text


@functools.lru_cache(maxsize=64)
def default_font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def get_font(face: FontFace | None, size: int):
    return default_font(size) if face is None else load_font(str(face.path), size)
