"""Annotated copies of photos: what was found and what it says, checkable at a glance.

Each line's polygon is outlined (and, for lines of several words, each word's box thinly), and
its text is written on an opaque label just above the line (or below it, when there is no room
above or the place is taken by an earlier label): white letters with a black outline on a box coloured by confidence, so the label reads on any
background. Colours: red below 0.5, orange below 0.8, green from 0.8.

Big photos are drawn scaled down to ``max_side`` pixels on the long side (the JSON keeps the
original coordinates); line widths and label sizes scale with the drawn size.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .results import Line, PageResult

__all__ = ["CONFIDENCE_COLOURS", "confidence_colour", "render", "render_image"]

#: ``(upper bound, RGB colour)``: the first bound above the confidence picks the colour.
CONFIDENCE_COLOURS = ((0.5, (220, 40, 40)), (0.8, (245, 150, 20)), (float("inf"), (30, 170, 60)))
TEXT_FILL = (255, 255, 255)
TEXT_OUTLINE = (0, 0, 0)
DEFAULT_MAX_SIDE = 2048


def confidence_colour(confidence: float) -> tuple[int, int, int]:
    """RGB colour for a confidence: red < 0.5 <= orange < 0.8 <= green."""
    return next(colour for bound, colour in CONFIDENCE_COLOURS if confidence < bound)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font at ``size`` pixels."""
    return ImageFont.load_default(size=size)


def render(rgb: np.ndarray, page: PageResult, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """Draw ``page``'s lines over ``rgb`` (the image it was read from); returns a new RGB array,
    scaled down to at most ``max_side`` pixels on the long side."""
    return np.asarray(render_image(rgb, page, max_side))


def render_image(rgb: np.ndarray, page: PageResult, max_side: int = DEFAULT_MAX_SIDE) -> Image.Image:
    """:func:`render` as the RGB PIL image drawn on (what Pillow encodes without another copy)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    canvas = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(canvas)
    long_side = max(canvas.size)
    line_width = max(2, round(long_side / 500))
    for line in page.lines:
        _draw_outline(draw, line, scale, line_width)
    placed: list[tuple[float, float, float, float]] = []
    for line in page.lines:
        placed.append(_draw_label(draw, line, scale, long_side, canvas.size, placed))
    return canvas


def _points(polygon: list[list[float]], scale: float) -> list[tuple[float, float]]:
    return [(x * scale, y * scale) for x, y in polygon]


def _draw_outline(draw: ImageDraw.ImageDraw, line: Line, scale: float, line_width: int) -> None:
    """The line's polygon, and its words' boxes when there are several."""
    colour = confidence_colour(line.confidence)
    draw.polygon(_points(line.polygon, scale), outline=colour, width=line_width)
    if len(line.words) > 1:
        for word in line.words:
            draw.polygon(_points(word.polygon, scale), outline=colour, width=max(1, line_width // 2))


def _draw_label(draw: ImageDraw.ImageDraw, line: Line, scale: float, long_side: int,
                canvas_size: tuple[int, int], placed: list[tuple[float, float, float, float]]
                ) -> tuple[float, float, float, float]:
    """The line's text on a confidence-coloured box above or below the line; returns the box.

    The font follows the line's height, kept between 1/90 and 1/45 of the image's long side
    (at least 10 px) so labels stay legible for small text and modest for big text.
    """
    points = np.array(_points(line.polygon, scale))
    line_height = float(np.linalg.norm(points[3] - points[0]))
    font_size = round(max(10.0, min(max(0.8 * line_height, long_side / 90), long_side / 45)))
    font = _font(font_size)
    stroke = max(1, font_size // 12)
    pad = max(2, font_size // 6)
    left, top, right, bottom = draw.textbbox((0, 0), line.text, font=font, stroke_width=stroke)
    size = (right - left + 2 * pad, bottom - top + 2 * pad)
    box = _label_box(points, size, canvas_size, placed)
    draw.rectangle(box, fill=confidence_colour(line.confidence))
    draw.text((box[0] + pad - left, box[1] + pad - top), line.text, font=font, fill=TEXT_FILL, stroke_width=stroke,
              stroke_fill=TEXT_OUTLINE)
    return box


def _label_box(points: np.ndarray, size: tuple[int, int], canvas_size: tuple[int, int],
               placed: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """Where a label of ``size`` goes: above the line if it fits in the image and overlaps no
    earlier label, else below, else whichever of the two overlaps earlier labels least."""
    (x0, y0), (_, y1) = points.min(0), points.max(0)
    (box_w, box_h), (canvas_w, canvas_h) = size, canvas_size
    x = min(max(0.0, x0), max(0.0, canvas_w - box_w))
    above, below = y0 - box_h - 1, min(y1 + 1, max(0.0, canvas_h - box_h))
    candidates = [(x, y, x + box_w, y + box_h) for y in ((above, below) if above >= 0 else (below,))]
    return min(candidates, key=lambda box: sum(_overlap(box, other) for other in placed))


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection area of two ``(x0, y0, x1, y1)`` boxes."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
