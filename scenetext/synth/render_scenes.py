"""Synthetic scenes for the detector: text lines composited into background photos, with exact
word and line quadrilaterals.

Each line is drawn flat once (words measured one by one, so every word's ink box is exact),
warped by a small random homography, and composed into a free spot of the photo. The same
matrix moves the boxes, so a drawn word always lies inside its quadrilateral.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..data.formats import Region
from .backgrounds import BackgroundPool
from .fonts import FontPool, get_font
from .render_text import (
    box_corners,
    compose_text,
    degrade,
    draw_layout,
    fit_homography,
    homography,
    layout_text,
    warp_points,
    word_ink_boxes,
)
from .text_sampler import TextSampler


@dataclass
class SceneStyle:
    size: tuple[int, int] = (640, 480)  # (width, height)
    lines: tuple[int, int] = (2, 8)  # sparse layouts
    dense_lines: tuple[int, int] = (8, 18)
    dense_prob: float = 0.3
    words_per_line: tuple[int, int] = (1, 4)
    text_height: tuple[float, float] = (8.0, 150.0)  # ink height in pixels, log-uniform
    rotation_deg: float = 8.0
    shear: float = 0.15
    perspective: float = 0.15
    border_prob: float = 0.1
    shadow_prob: float = 0.15
    photo_prob: float = 0.85
    degrade: float = 0.5


@dataclass
class SceneRenderer:
    """Renders (RGB uint8 image, word regions, line regions) from a seedable RNG."""

    sampler: TextSampler = field(default_factory=TextSampler)
    fonts: FontPool = field(default_factory=FontPool.from_dirs)
    backgrounds: BackgroundPool = field(default_factory=lambda: BackgroundPool.from_dir(cache_size=256))
    style: SceneStyle = field(default_factory=SceneStyle)

    def _line_text(self, rng: random.Random) -> str:
        n = rng.randint(*self.style.words_per_line)
        words = []
        while len(words) < n:
            words.extend(self.sampler.sample(rng).split())
        return " ".join(words[:n])

    def render(self, rng: random.Random) -> tuple[np.ndarray, list[Region], list[Region]]:
        st = self.style
        W, H = st.size
        canvas = self.backgrounds.crop(rng, W, H, photo_prob=st.photo_prob).astype(np.float32)
        occupied = np.zeros((H, W), np.uint8)
        dense = rng.random() < st.dense_prob
        n_lines = rng.randint(*(st.dense_lines if dense else st.lines))
        words_out: list[Region] = []
        lines_out: list[Region] = []
        lo, hi = st.text_height
        max_h = hi / (2.5 if dense else 1.0)
        for _ in range(n_lines):
            text_h = math.exp(rng.uniform(math.log(lo), math.log(max(lo + 1, max_h))))
            placed = self._place_line(rng, canvas, occupied, text_h)
            if placed is not None:
                words_out.extend(placed[0])
                lines_out.append(placed[1])
        img = degrade(rng, np.clip(canvas, 0, 255).astype(np.uint8), st.degrade)
        return img, words_out, lines_out

    def _place_line(self, rng, canvas, occupied, text_h):
        st = self.style
        H, W = occupied.shape
        face, label = self.fonts.pick(rng, self._line_text(rng))
        # Font size is about 1.4x the ink height of mixed-case text.
        font = get_font(face, max(6, int(round(text_h * 1.4))))
        stroke = max(1, int(text_h / 15)) if rng.random() < st.border_prob else 0
        # Measured first and drawn only once placed: about half the lines find no room.
        layout = layout_text(label, font, stroke=stroke)
        lw, lh = layout.size
        if lw > W * 0.95 or lh > H * 0.95:
            return None
        word_texts, word_boxes = word_ink_boxes(layout)
        if not word_boxes:
            return None
        Hm, ww, wh = fit_homography(homography(rng, lw, lh, st.rotation_deg, st.shear, st.perspective), lw, lh)
        if ww >= W or wh >= H:
            return None
        for _ in range(8):
            x, y = rng.randint(0, W - ww), rng.randint(0, H - wh)
            if not occupied[y : y + wh, x : x + ww].any():
                break
        else:
            return None
        layer = draw_layout(layout)
        alphas = [cv2.warpPerspective(a, Hm, (ww, wh), flags=cv2.INTER_LINEAR)
                  for a in (layer.fill, layer.outline) if a is not None]
        roi = canvas[y : y + wh, x : x + ww]
        compose_text(rng, roi, alphas[0], alphas[1] if len(alphas) > 1 else None, shadow_prob=st.shadow_prob)
        gap = max(2, int(text_h * 0.3))
        occupied[max(0, y - gap) : y + wh + gap, max(0, x - gap) : x + ww + gap] = 1

        shift = np.array([x, y], np.float32)
        words = [Region(warp_points(Hm, box_corners(b)) + shift, w) for w, b in zip(word_texts, word_boxes)]
        boxes = np.array(word_boxes)
        union = (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
        line = Region(warp_points(Hm, box_corners(union)) + shift, " ".join(word_texts))
        return words, line
