"""Detection scenes made of real word crops pasted into background photos.

Incidental scene text (ICDAR 2015 style) is small, blurred and photographed, unlike anything a font
renderer draws. The recognition training sets hold thousands of such words already cut out of
photos; this renderer puts them back into scenes: each crop is scaled to a small height, slightly
rotated, and blended into a background photo with a feathered edge. Its rotated rectangle is the
word's region (a recognition crop is the word's annotated box). With ``PasteStyle.margin`` the
crop is pasted seamlessly instead: grown by a margin of its own edge pixels that fades into the
scene, so that the patch's edge, which a photo does not have, does not show where the box ends.

So that "a pasted patch" is not itself a cue for text, the same number of plain patches cut from
other background photos are pasted in the same way, unlabelled. Words sometimes come in rows
(a few crops side by side at one height), as on signs.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..data.formats import RecSample, Region
from .backgrounds import BackgroundPool


@dataclass
class PasteStyle:
    size: tuple[int, int] = (960, 540)  # (width, height) of the scene
    words: tuple[int, int] = (3, 14)
    row_prob: float = 0.35  # chance that a placement is a row of 2-3 words
    text_height: tuple[float, float] = (8.0, 56.0)  # crop height in pixels, log-uniform
    max_rotation: float = 12.0  # degrees, per word or row
    distractors: float = 1.0  # plain patches per word, on average
    feather: float = 1.0  # sigma in pixels of the blended edge
    # Seamless pasting: each row is extended on every side by a margin drawn from this range (in
    # row heights) of its own edge pixels (replicated, blurred) that fade into the scene, so no
    # patch edge marks where the word's region ends; (0, 0) pastes every crop as a rectangle.
    margin: tuple[float, float] = (0.0, 0.0)
    max_aspect: float = 1.4  # crops taller than this * width are vertical text: not used
    tries: int = 30


def _extended(row: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """The row grown by ``margin`` px on every side with its edge pixels, blurred there, and an
    alpha that is 1 over the row and falls linearly to 0 at the outer edge."""
    h, w = row.shape[:2]
    out = cv2.copyMakeBorder(row, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(out, (0, 0), max(1.0, margin / 2))
    inside = np.zeros(out.shape[:2], bool)
    inside[margin : margin + h, margin : margin + w] = True
    out[~inside] = blurred[~inside]
    ys = np.minimum(np.arange(h + 2 * margin), np.arange(h + 2 * margin)[::-1])
    xs = np.minimum(np.arange(w + 2 * margin), np.arange(w + 2 * margin)[::-1])
    alpha = np.minimum.outer(ys, xs).astype(np.float32)
    return out, np.clip((alpha + 0.5) / (margin + 0.5), 0, 1)


def _rotated_patch(patch: np.ndarray, angle: float,
                   alpha: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate an RGB patch (and its alpha, default all 1) about its centre into a bounding canvas;
    returns (patch, alpha, corners) with the corners of the original rectangle (clockwise from
    top-left) in the new canvas."""
    h, w = patch.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]]) @ m[:, :2].T + m[:, 2]
    lo = np.floor(corners.min(axis=0))
    m[:, 2] -= lo
    corners -= lo
    size = tuple(int(v) for v in np.ceil(corners.max(axis=0)) + 1)
    out = cv2.warpAffine(patch, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = np.ones((h, w), np.float32) if alpha is None else alpha
    alpha = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR)
    return out, alpha, corners.astype(np.float32)


@dataclass
class PasteSceneRenderer:
    """Renders (RGB uint8 image, word regions, line regions) from a seedable RNG."""

    crops: list[RecSample]
    backgrounds: BackgroundPool = field(default_factory=lambda: BackgroundPool.from_dir(cache_size=256))
    style: PasteStyle = field(default_factory=PasteStyle)
    cache_size: int = 4096

    def __post_init__(self):
        if not self.crops:
            raise ValueError("PasteSceneRenderer needs at least one word crop")
        self._load = functools.lru_cache(maxsize=self.cache_size)(self._read)

    @staticmethod
    def _read(path: Path) -> np.ndarray | None:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return None if bgr is None or min(bgr.shape[:2]) < 4 else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _word(self, rng: random.Random) -> tuple[np.ndarray, str] | None:
        sample = self.crops[rng.randrange(len(self.crops))]
        img = self._load(Path(sample.image))
        if img is None or not sample.text.strip() or img.shape[0] > self.style.max_aspect * img.shape[1]:
            return None
        return img, sample.text

    def _blend(self, canvas: np.ndarray, patch: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
        if self.style.feather > 0:
            alpha = cv2.GaussianBlur(alpha, (0, 0), self.style.feather) * alpha  # soften only inside the edge
        h, w = alpha.shape
        region = canvas[y : y + h, x : x + w]
        region += alpha[..., None] * (patch.astype(np.float32) - region)

    def _row(self, rng: random.Random) -> tuple[np.ndarray, list[tuple[float, float, str]]] | None:
        """1-3 word crops scaled to one height and set side by side; returns the row image and
        each word's (x0, x1, text) in it."""
        st = self.style
        height = math.exp(rng.uniform(math.log(st.text_height[0]), math.log(st.text_height[1])))
        n = rng.randint(2, 3) if rng.random() < st.row_prob else 1
        parts, spans, x = [], [], 0.0  # parts: (image, gap before it)
        for _ in range(n):
            word = self._word(rng)
            if word is None:
                continue
            img, text = word
            h = max(4, round(height * rng.uniform(0.9, 1.1)))
            w = max(4, round(img.shape[1] * h / img.shape[0]))
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if h < img.shape[0] else cv2.INTER_LINEAR)
            gap = max(2, round(height * rng.uniform(0.3, 1.0))) if parts else 0
            x += gap
            parts.append((img, gap))
            spans.append((x, x + w, text))
            x += w
        if not spans:
            return None
        row_h = max(img.shape[0] for img, _ in parts)
        row = np.empty((row_h, int(x), 3), np.uint8)
        row[:] = np.median(parts[0][0][:, :2].reshape(-1, 3), axis=0).astype(np.uint8)  # gaps: the edge colour
        cx = 0
        for img, gap in parts:
            cx += gap
            top = (row_h - img.shape[0]) // 2
            row[top : top + img.shape[0], cx : cx + img.shape[1]] = img
            cx += img.shape[1]
        return row, spans

    def render(self, rng: random.Random) -> tuple[np.ndarray, list[Region], list[Region]]:
        st = self.style
        W, H = st.size
        canvas = self.backgrounds.crop(rng, W, H, photo_prob=0.95).astype(np.float32)
        occupied = np.zeros((H, W), bool)
        words_out: list[Region] = []
        lines_out: list[Region] = []
        n_words = rng.randint(*st.words)
        placed_words = 0
        for _ in range(st.tries):
            if placed_words >= n_words:
                break
            row = self._row(rng)
            if row is None:
                continue
            img, spans = row
            m = round(rng.uniform(*st.margin) * img.shape[0]) if st.margin[1] > 0 else 0
            if img.shape[1] + 2 * m >= W - 4 or img.shape[0] + 2 * m >= H - 4:
                continue
            ext, ext_alpha = _extended(img, m) if m else (img, None)
            patch, alpha, corners = _rotated_patch(ext, rng.uniform(-st.max_rotation, st.max_rotation), ext_alpha)
            spot = self._paste_somewhere(rng, canvas, occupied, patch, alpha)
            if spot is None:
                continue
            x, y = spot
            ph, pw = alpha.shape
            occupied[max(0, y - 4) : y + ph + 4, max(0, x - 4) : x + pw + 4] = True
            origin = np.float32([x, y])
            tl, tr, br, bl = corners + origin
            if m:  # the row's own rectangle inside the extended patch
                eh, ew = ext.shape[:2]
                across, down = (tr - tl) / ew, (bl - tl) / eh
                tl = tl + m * across + m * down
                tr, bl = tl + img.shape[1] * across, tl + img.shape[0] * down
                br = tr + img.shape[0] * down
            # Corners of each word: interpolate along the row's top and bottom edges.
            width = float(img.shape[1])
            for x0, x1, text in spans:
                a, b = x0 / width, x1 / width
                quad = np.float32([tl + a * (tr - tl), tl + b * (tr - tl), bl + b * (br - bl), bl + a * (br - bl)])
                words_out.append(Region(quad, text))
            lines_out.append(Region(np.float32([tl, tr, br, bl]), " ".join(t for _, _, t in spans)))
            placed_words += len(spans)
        self._distractors(rng, canvas, occupied, round(placed_words * st.distractors * rng.uniform(0.5, 1.5)))
        return np.clip(canvas, 0, 255).astype(np.uint8), words_out, lines_out

    def _distractors(self, rng: random.Random, canvas: np.ndarray, occupied: np.ndarray, n: int) -> None:
        st = self.style
        H, W = occupied.shape
        for _ in range(n):
            h = max(4, round(math.exp(rng.uniform(math.log(st.text_height[0]), math.log(st.text_height[1])))))
            w = max(4, round(h * rng.uniform(0.8, 6.0)))
            if w >= W - 4:
                continue
            plain = self.backgrounds.crop(rng, w, h, photo_prob=0.9)
            patch, alpha, _ = _rotated_patch(plain, rng.uniform(-st.max_rotation, st.max_rotation))
            self._paste_somewhere(rng, canvas, occupied, patch, alpha)

    def _paste_somewhere(self, rng: random.Random, canvas: np.ndarray, occupied: np.ndarray, patch: np.ndarray,
                         alpha: np.ndarray) -> tuple[int, int] | None:
        """Blend the patch in at one random spot of the canvas; None (nothing pasted) when that
        spot overlaps an occupied area."""
        H, W = occupied.shape
        ph, pw = alpha.shape
        x, y = rng.randint(0, W - pw - 1), rng.randint(0, H - ph - 1)
        if occupied[y : y + ph, x : x + pw].any():
            return None
        self._blend(canvas, patch, alpha, x, y)
        return x, y
