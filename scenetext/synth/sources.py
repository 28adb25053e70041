"""Where synthetic data takes its background photos and its words from.

Both are explicit: the command line's ``--backgrounds DIR`` and ``--words FILE`` (``scenetext
synth ...``, ``scenetext train ...``) set them for the run and its data workers through the
environment variables below; without them, the defaults are the shared data folder next to a
checkout (``../shared/backgrounds``, ``../shared/synth/lexicon-90k.txt``) and Debian's
``/usr/share/dict/words``. The command line refuses a default that is missing with a clear error;
the library itself falls back to plain colours and a built-in word list.
"""

from __future__ import annotations

import os
from pathlib import Path

BACKGROUNDS_ENV = "SCENETEXT_BACKGROUNDS"
WORDS_ENV = "SCENETEXT_WORDS"
NONE = "none"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DEFAULT_BACKGROUNDS = SHARED / "backgrounds"
DEFAULT_WORDS = (SHARED / "synth" / "lexicon-90k.txt", Path("/usr/share/dict/words"))


def background_dir() -> Path | None:
    """The folder of text-free background photos (``None``: plain colours and gradients)."""
    value = os.environ.get(BACKGROUNDS_ENV)
    if value is None:
        return DEFAULT_BACKGROUNDS
    return None if value == NONE else Path(value)


def word_lists() -> tuple[Path, ...]:
    """The word-list files the text sampler reads (empty: its built-in list)."""
    value = os.environ.get(WORDS_ENV)
    if value is None:
        return DEFAULT_WORDS
    return () if value == NONE else tuple(Path(p) for p in value.split(os.pathsep) if p)
