"""scenetext: offline, CPU-first scene-text OCR (CTPN detector + CRNN/CTC recogniser).

    >>> import scenetext
    >>> page = scenetext.Reader().read("photo.jpg")
    >>> print(page.text)

Importing the package is cheap: models and heavy libraries load only when used. ``Reader``,
``PageResult`` and ``load_image`` are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Reader": "scenetext.reader",
    "PageResult": "scenetext.results",
    "Line": "scenetext.results",
    "Word": "scenetext.results",
    "load_image": "scenetext.imageio",
    "ImageLoadError": "scenetext.imageio",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scenetext' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
