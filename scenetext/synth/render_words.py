"""Synthetic word crops for the recogniser: the label is exactly what is drawn."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import cv2
import numpy as np

from .backgrounds import BackgroundPool
from .fonts import FontPool, get_font
from .render_text import (
    compose_text,
    curve_remap,
    degrade,
    draw_text,
    fit_homography,
    homography,
    ink_box,
)
from .text_sampler import TextSampler


@dataclass
class WordStyle:
    """Ranges for the random looks of a word crop."""

    font_size: tuple[int, int] = (22, 46)
    border_prob: float = 0.15
    shadow_prob: float = 0.15
    rotation_deg: float = 4.0
    shear: float = 0.3
    perspective: float = 0.12
    curve_prob: float = 0.08
    margin_x: tuple[float, float] = (0.0, 0.45)  # fraction of text height, each side
    margin_y: tuple[float, float] = (-0.03, 0.22)
    degrade: float = 1.0


@dataclass
class WordRenderer:
    """Renders (RGB uint8 crop of height `height`, label) pairs from a seedable RNG."""

    sampler: TextSampler = field(default_factory=TextSampler)
    fonts: FontPool = field(default_factory=FontPool.from_dirs)
    backgrounds: BackgroundPool = field(default_factory=lambda: BackgroundPool.from_dir(reduce=2, cache_size=1024))
    style: WordStyle = field(default_factory=WordStyle)
    height: int = 32

    def render(self, rng: random.Random, text: str | None = None) -> tuple[np.ndarray, str]:
        st = self.style
        text = self.sampler.sample(rng) if text is None else text
        face, label = self.fonts.pick(rng, text)
        font = get_font(face, rng.randint(*st.font_size))
        stroke = rng.randint(1, 3) if rng.random() < st.border_prob else 0
        layer = draw_text(label, font, stroke=stroke)
        alphas = [layer.fill] + ([layer.outline] if layer.outline is not None else [])

        if rng.random() < st.curve_prob:
            th = (ink_box(layer.fill) or (0, 0, 1, 1))[3]
            alphas = curve_remap(rng, alphas, rng.uniform(0.05, 0.2) * th)
        h0, w0 = alphas[0].shape
        H, W, Hh = fit_homography(homography(rng, w0, h0, st.rotation_deg, st.shear, st.perspective), w0, h0)
        alphas = [cv2.warpPerspective(a, H, (W, Hh), flags=cv2.INTER_LINEAR) for a in alphas]

        # Crop around the ink of the whole text (outline included) with random margins.
        box = ink_box(alphas[-1]) or (0, 0, W, Hh)
        x0, y0, x1, y1 = box
        th = y1 - y0
        ml, mr = (int(rng.uniform(*st.margin_x) * th) for _ in range(2))
        mt, mb = (int(rng.uniform(*st.margin_y) * th) for _ in range(2))
        cx0, cy0, cx1, cy1 = x0 - ml, y0 - mt, x1 + mr, y1 + mb
        pad = max(0, -cx0, -cy0, cx1 - W, cy1 - Hh)
        if pad:
            alphas = [cv2.copyMakeBorder(a, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0) for a in alphas]
            cx0, cy0, cx1, cy1 = cx0 + pad, cy0 + pad, cx1 + pad, cy1 + pad
        alphas = [a[cy0:cy1, cx0:cx1] for a in alphas]
        ch, cw = alphas[0].shape

        canvas = self.backgrounds.crop(rng, cw, ch).astype(np.float32)
        compose_text(rng, canvas, alphas[0], alphas[1] if len(alphas) > 1 else None, shadow_prob=st.shadow_prob)
        img = degrade(rng, np.clip(canvas, 0, 255).astype(np.uint8), st.degrade)
        out_w = max(1, round(cw * self.height / ch))
        img = cv2.resize(img, (out_w, self.height), interpolation=cv2.INTER_AREA if ch > self.height else cv2.INTER_LINEAR)
        return img, label
