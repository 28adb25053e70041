"""Synthetic text-line crops labelled column by column: inside a word or not (word splitter data).

A detected line of small text often holds several words whose spaces are a few pixels wide and
blurred (``TOAST BOX``): too narrow for the detector's 16-px proposal grid and not blank enough
for a fixed ink threshold. The word splitter (:mod:`scenetext.detection.splitter`) learns where
words start and end from crops like the ones this module draws: 1-4 words of random fonts, with
word spacing from 0.4x to 2x the font's own space, on background photos, cropped loosely as a
detector would (margins from slightly inside the ink to over half a text height), shrunk to an
ink height of 6-40 px and degraded (blur, noise, JPEG), then brought to a height of 32. Labels are
per output frame of the splitter (4 columns): 1 where the frame's centre lies inside a word's ink
span. A share of crops holds no text at all (all 0): background the detector mistook for a line.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ..recognition.preprocess import FRAME_STRIDE as FRAME
from ..recognition.preprocess import HEIGHT, target_width
from .backgrounds import BackgroundPool
from .fonts import FontPool, get_font
from .render_text import compose_text, degrade
from .text_sampler import TextSampler


def frame_labels(spans: list[tuple[float, float]], width: int, frame: int = FRAME) -> np.ndarray:
    """Per-frame labels for a crop ``width`` columns wide: 1 where the frame centre falls in one of
    the ``spans`` (column ranges ``[a, b)``), else 0; ``width // frame`` frames (at least 1)."""
    n = max(1, width // frame)
    centres = (np.arange(n) + 0.5) * frame
    labels = np.zeros(n, np.int64)
    for a, b in spans:
        labels[(centres >= a) & (centres < b)] = 1
    return labels


@dataclass
class LineStyle:
    words: tuple[int, int] = (1, 4)
    font_size: tuple[int, int] = (24, 56)
    space: tuple[float, float] = (0.4, 2.0)  # word spacing, in multiples of the font's space
    margin_x: tuple[float, float] = (-0.08, 0.6)  # each side, in ink heights
    margin_y: tuple[float, float] = (-0.05, 0.35)
    ink_height: tuple[float, float] = (6.0, 40.0)  # simulated photo ink height, log-uniform
    negative_prob: float = 0.1
    border_prob: float = 0.1
    degrade: float = 1.0
    max_width: int = 640  # of the 32-px crop


@dataclass
class LineSpanRenderer:
    """Renders (RGB uint8 crop of height 32, per-frame labels) pairs from a seedable RNG."""

    sampler: TextSampler = field(default_factory=TextSampler)
    fonts: FontPool = field(default_factory=FontPool.from_dirs)
    backgrounds: BackgroundPool = field(default_factory=lambda: BackgroundPool.from_dir(reduce=2, cache_size=512))
    style: LineStyle = field(default_factory=LineStyle)

    def render(self, rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < self.style.negative_prob:
            return self._negative(rng)
        for _ in range(5):
            out = self._line(rng)
            if out is not None:
                return out
        return self._negative(rng)

    def _words(self, rng: random.Random) -> list[str]:
        n = rng.randint(*self.style.words)
        words: list[str] = []
        while len(words) < n:
            words.extend(self.sampler.sample(rng).split())
        return words[:n]

    def _line(self, rng: random.Random):
        st = self.style
        words = self._words(rng)
        face, label = self.fonts.pick(rng, " ".join(words))
        words = label.split(" ") if label.count(" ") == len(words) - 1 else [label]
        font = get_font(face, rng.randint(*st.font_size))
        stroke = rng.randint(1, 2) if rng.random() < st.border_prob else 0
        space = font.getlength(" ") * rng.uniform(*st.space)
        # Lay the words out one by one so the spacing can vary; ink spans from FreeType's boxes.
        boxes, x = [], 0.0
        for word in words:
            bx0, by0, bx1, by1 = font.getbbox(word, stroke_width=stroke)
            if bx1 <= bx0:
                continue
            boxes.append((word, x, bx0, by0, bx1, by1))
            x += font.getlength(word) + space
        if not boxes:
            return None
        top = min(b[3] for b in boxes)
        bottom = max(b[5] for b in boxes)
        ink_h = bottom - top
        if ink_h < 4:
            return None
        left, right = boxes[0][1] + boxes[0][2], boxes[-1][1] + boxes[-1][4]
        ml, mr = (rng.uniform(*st.margin_x) * ink_h for _ in range(2))
        mt, mb = (rng.uniform(*st.margin_y) * ink_h for _ in range(2))
        x0, x1 = left - ml, right + mr
        y0, y1 = top - mt, bottom + mb
        if x1 - x0 < ink_h * 0.5 or y1 - y0 < 4:
            return None
        w, h = int(math.ceil(x1 - x0)), int(math.ceil(y1 - y0))
        alpha = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(alpha)
        outline = Image.new("L", (w, h), 0) if stroke else None
        for word, wx, *_ in boxes:
            origin = (wx - x0, -y0)
            draw.text(origin, word, font=font, fill=255)
            if outline is not None:
                ImageDraw.Draw(outline).text(origin, word, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
        fill = np.asarray(alpha, np.float32) / 255.0
        out_a = None if outline is None else np.asarray(outline, np.float32) / 255.0
        canvas = self.backgrounds.crop(rng, w, h).astype(np.float32)
        compose_text(rng, canvas, fill, out_a)
        img = np.clip(canvas, 0, 255).astype(np.uint8)
        spans = [(wx + bx0 - x0, wx + bx1 - x0) for _, wx, bx0, _, bx1, _ in boxes]
        return self._finish(rng, img, spans, ink_h)

    def _negative(self, rng: random.Random):
        h = rng.randint(12, 60)
        w = int(h * rng.uniform(1.5, 12.0))
        img = self.backgrounds.crop(rng, w, h, photo_prob=0.9)
        return self._finish(rng, img, [], float(h))

    def _finish(self, rng: random.Random, img: np.ndarray, spans, ink_h: float):
        """Shrink to a photo-like ink height, degrade, bring to height 32, label the frames."""
        st = self.style
        h, w = img.shape[:2]
        target = math.exp(rng.uniform(math.log(st.ink_height[0]), math.log(st.ink_height[1])))
        f = min(1.0, target / ink_h)
        if f < 1.0:
            img = cv2.resize(img, (max(2, round(w * f)), max(2, round(h * f))), interpolation=cv2.INTER_AREA)
        img = degrade(rng, img, st.degrade)
        sh, sw = img.shape[:2]
        out_w = target_width(sw, sh, HEIGHT, st.max_width)  # a multiple of 4, as the splitter reads it
        scale = out_w / w
        img = cv2.resize(img, (out_w, HEIGHT), interpolation=cv2.INTER_LINEAR if sh < HEIGHT else cv2.INTER_AREA)
        return img, frame_labels([(a * scale, b * scale) for a, b in spans], out_w)
