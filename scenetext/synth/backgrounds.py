"""Background photos for synthetic data: any folder of text-free images, decoded lazily."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import cv2
import numpy as np

_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class BackgroundPool:
    """Random RGB crops of background photos. With no photos, draws flat colours and gradients."""

    def __init__(self, paths: list[Path], cache_size: int = 128, reduce: int = 1):
        """`reduce` in (1, 2, 4, 8) decodes photos at that fraction of their size (faster, smaller)."""
        self.paths = sorted(paths)
        self._flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                      8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
        self._load = functools.lru_cache(maxsize=cache_size)(self._read)

    @classmethod
    def from_dir(cls, folder: str | Path | None = "default", **kwargs) -> "BackgroundPool":
        """The photos under ``folder`` (``"default"``: :func:`~.sources.background_dir`); no
        folder or a missing one gives plain colours and gradients."""
        if folder == "default":
            from .sources import background_dir

            folder = background_dir()
        if folder is None or not Path(folder).is_dir():
            return cls([], **kwargs)
        return cls([p for p in Path(folder).rglob("*") if p.suffix.lower() in _EXTS], **kwargs)

    def __len__(self):
        return len(self.paths)

    def _read(self, path: Path) -> np.ndarray | None:
        bgr = cv2.imread(str(path), self._flag)
        return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def photo(self, rng: random.Random) -> np.ndarray | None:
        if not self.paths:
            return None
        return self._load(self.paths[rng.randrange(len(self.paths))])

    def crop(self, rng: random.Random, w: int, h: int, photo_prob: float = 0.7) -> np.ndarray:
        """An RGB w x h background: a photo crop (resized so it covers), flat colour or gradient."""
        photo = self.photo(rng) if rng.random() < photo_prob else None
        if photo is None:
            return flat_or_gradient(rng, w, h)
        ph, pw = photo.shape[:2]
        # Take a window of random scale, then resize to the wanted size.
        scale = rng.uniform(0.3, 1.0) * min(pw / w, ph / h)
        cw, ch = max(4, min(pw, int(w * scale))), max(4, min(ph, int(h * scale)))
        x, y = rng.randint(0, pw - cw), rng.randint(0, ph - ch)
        patch = photo[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        return cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR)


def random_color(rng: random.Random) -> np.ndarray:
    return np.array([rng.randint(0, 255) for _ in range(3)], np.float32)


def flat_or_gradient(rng: random.Random, w: int, h: int) -> np.ndarray:
    c1 = random_color(rng)
    if rng.random() < 0.5:
        return np.broadcast_to(c1, (h, w, 3)).astype(np.uint8)
    c2 = np.clip(c1 + np.array([rng.uniform(-80, 80) for _ in range(3)], np.float32), 0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    xs, ys = np.meshgrid(np.linspace(0, 1, w, dtype=np.float32), np.linspace(0, 1, h, dtype=np.float32))
    t = np.cos(angle) * xs + np.sin(angle) * ys
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (c1 * (1 - t[..., None]) + c2 * t[..., None]).astype(np.uint8)
