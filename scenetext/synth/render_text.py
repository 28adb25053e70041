"""Drawing primitives shared by the word-crop and scene renderers.

Text is drawn once as alpha masks (fill, and outline for bordered text) with Pillow/FreeType;
colours, shadows and backgrounds are composed in numpy; geometry is a homography applied with
OpenCV, so the same matrix moves the ground-truth boxes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw


@dataclass
class TextLayer:
    fill: np.ndarray  # float32 HxW alpha in [0, 1]
    outline: np.ndarray | None  # float32 HxW alpha of the text grown by its border, or None
    word_boxes: list[tuple[int, int, int, int]]  # tight ink boxes (x0, y0, x1, y1), exclusive ends
    words: list[str]


def _draw(text: str, font, origin, size, stroke: int = 0) -> np.ndarray:
    img = Image.new("L", size, 0)
    ImageDraw.Draw(img).text(origin, text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    return np.asarray(img, dtype=np.float32) / 255.0


def ink_box(mask: np.ndarray, thresh: float = 0.1) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask > thresh)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _word_ink_box(word: str, font, x: float, y: int, stroke: int = 0):
    """Ink box (border included) of `word` drawn at (x, y) on the line canvas, from FreeType's
    glyph bounding box (no extra drawing); rounded outwards to whole pixels."""
    bx0, by0, bx1, by1 = font.getbbox(word, stroke_width=stroke)
    if bx1 <= bx0 or by1 <= by0:
        return None
    return int(np.floor(x + bx0)), y + by0, int(np.ceil(x + bx1)), y + by1


@dataclass
class TextLayout:
    """Where `text` goes on its transparent canvas, measured without drawing it."""

    text: str
    font: object
    stroke: int
    size: tuple[int, int]  # canvas (width, height)
    origin: tuple[int, int]  # where the text is drawn on it


def layout_text(text: str, font, stroke: int = 0, pad: int | None = None) -> TextLayout:
    """Measure `text` (border included) and the canvas it is drawn on, padded by `pad` (default:
    a quarter of its height and its border, plus 2) on every side."""
    x0, y0, x1, y1 = font.getbbox(text, stroke_width=stroke)
    if pad is None:
        pad = 2 + stroke + (y1 - y0) // 4
    return TextLayout(text, font, stroke, (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), (pad - x0, pad - y0))


def word_ink_boxes(layout: TextLayout) -> tuple[list[str], list[tuple[int, int, int, int]]]:
    """The space-separated words of a laid-out text that have ink, and their ink boxes (border
    included) on its canvas, from FreeType's glyph boxes (no drawing)."""
    text, font, (ox, oy) = layout.text, layout.font, layout.origin
    words, boxes = [], []
    start = 0
    for word in text.split(" "):
        if word:
            box = _word_ink_box(word, font, ox + font.getlength(text[:start]), oy, layout.stroke)
            if box is not None:
                words.append(word)
                boxes.append(box)
        start += len(word) + 1
    return words, boxes


def draw_layout(layout: TextLayout) -> TextLayer:
    """Draw a laid-out text: its fill alpha, and its outline alpha when it has a border (no word
    boxes: :func:`word_ink_boxes` measures those)."""
    text, font, origin, size = layout.text, layout.font, layout.origin, layout.size
    fill = _draw(text, font, origin, size)
    outline = _draw(text, font, origin, size, layout.stroke) if layout.stroke > 0 else None
    return TextLayer(fill, outline, [], [])


def draw_text(text: str, font, stroke: int = 0, pad: int | None = None, per_word: bool = False) -> TextLayer:
    """Draw `text` on a transparent canvas (:func:`layout_text`, then :func:`draw_layout`).
    `per_word` also measures each space-separated word (its ink box, border included)."""
    layout = layout_text(text, font, stroke, pad)
    layer = draw_layout(layout)
    if per_word:
        layer.words, layer.word_boxes = word_ink_boxes(layout)
    return layer


def luminance(rgb) -> float:
    r, g, b = np.asarray(rgb, np.float32)[..., :3].reshape(-1, 3).mean(0)
    return 0.299 * r + 0.587 * g + 0.114 * b


def contrasting_color(rng: random.Random, bg_lum: float, min_diff: float = 70.0) -> np.ndarray:
    """A random colour whose luminance differs from the background's by at least `min_diff`."""
    for _ in range(20):
        c = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
        if abs(luminance(c) - bg_lum) >= min_diff:
            return c
    v = 0.0 if bg_lum > 127 else 255.0
    return np.array([v, v, v], np.float32) + np.array([rng.uniform(-20, 20) for _ in range(3)], np.float32).clip(
        -v, 255 - v
    )


def blend(canvas: np.ndarray, alpha: np.ndarray, color) -> None:
    """In place: canvas (float32 HxWx3) = canvas * (1 - alpha) + color * alpha."""
    a = alpha[..., None]
    canvas *= 1.0 - a
    canvas += a * np.asarray(color, np.float32)


def compose_text(
    rng: random.Random, canvas: np.ndarray, fill: np.ndarray, outline: np.ndarray | None, region=None,
    shadow_prob: float = 0.15,
) -> None:
    """Draw text alphas onto a float32 RGB canvas in place with contrasting colour, border, shadow.

    `region` (x0, y0, x1, y1) is where the background luminance is measured (default: ink box).
    """
    box = region or ink_box(fill) or (0, 0, canvas.shape[1], canvas.shape[0])
    x0, y0, x1, y1 = box
    bg_lum = luminance(canvas[y0:y1, x0:x1]) if x1 > x0 and y1 > y0 else 128.0
    color = contrasting_color(rng, bg_lum)
    if rng.random() < shadow_prob:  # drop shadow
        h = max(1.0, (y1 - y0) / 12)
        dx, dy = rng.uniform(-h, h), rng.uniform(0.3 * h, 1.5 * h)
        shadow = cv2.warpAffine(fill, np.float32([[1, 0, dx], [0, 1, dy]]), fill.shape[::-1])
        k = rng.choice([1, 3, 5])
        shadow = cv2.GaussianBlur(shadow, (k, k), 0) * rng.uniform(0.4, 0.9)
        blend(canvas, shadow, color * 0.25)
    if outline is not None:
        border_color = contrasting_color(rng, luminance(color), 90.0)
        blend(canvas, outline, border_color)
    blend(canvas, fill, color)


def homography(rng: random.Random, w: float, h: float, rot: float, shear: float, persp: float) -> np.ndarray:
    """A random 3x3 warp about the centre of a w x h layer: rotation (deg), x-shear, perspective."""
    cx, cy = w / 2, h / 2
    a = np.deg2rad(rng.uniform(-rot, rot))
    s = rng.uniform(-shear, shear)
    T1 = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]], np.float64)
    S = np.array([[1, s, 0], [0, 1, 0], [0, 0, 1]], np.float64)
    P = np.eye(3)
    P[2, 0] = rng.uniform(-persp, persp) / max(w, 1)
    P[2, 1] = rng.uniform(-persp, persp) / max(h, 1)
    return P @ R @ S @ T1


def fit_homography(H: np.ndarray, w: int, h: int, margin: int = 2) -> tuple[np.ndarray, int, int]:
    """Translate warp H so the warped w x h layer lands fully in a new canvas; returns (H', W', H')."""
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32).reshape(-1, 1, 2)
    warped = cv2.perspectiveTransform(corners, H).reshape(-1, 2)
    mn = warped.min(0) - margin
    mx = warped.max(0) + margin
    T = np.array([[1, 0, -mn[0]], [0, 1, -mn[1]], [0, 0, 1]], np.float64)
    size = np.ceil(mx - mn).astype(int)
    return T @ H, int(size[0]), int(size[1])


def warp_points(H: np.ndarray, pts) -> np.ndarray:
    pts = np.asarray(pts, np.float32).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(pts, H).reshape(-1, 2)


def box_corners(box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def curve_remap(rng: random.Random, alphas: list[np.ndarray], amplitude: float) -> list[np.ndarray]:
    """Bend layers along a sine arc (same bend for every layer)."""
    h, w = alphas[0].shape
    phase = rng.uniform(0, np.pi)
    xs = np.arange(w, dtype=np.float32)
    offset = amplitude * np.sin(np.pi * xs / max(w, 1) + phase).astype(np.float32)
    map_x = np.broadcast_to(xs, (h, w)).astype(np.float32)
    map_y = (np.arange(h, dtype=np.float32)[:, None] + offset[None, :]).astype(np.float32)
    return [cv2.remap(a, map_x, map_y, cv2.INTER_LINEAR, borderValue=0) for a in alphas]


def degrade(rng: random.Random, img: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Camera-like degradations on a uint8 RGB image: uneven light, low-res, blur, noise, JPEG."""
    h, w = img.shape[:2]
    out = img
    if rng.random() < 0.3 * strength:  # uneven light
        gx = np.linspace(rng.uniform(0.5, 1.2), rng.uniform(0.5, 1.2), w, dtype=np.float32)
        gy = np.linspace(rng.uniform(0.7, 1.2), rng.uniform(0.7, 1.2), h, dtype=np.float32)
        out = out * (gy[:, None] * gx[None, :])[..., None]
    if rng.random() < 0.3 * strength:  # contrast / brightness
        out = (out.astype(np.float32) - 128) * rng.uniform(0.5, 1.3) + 128 + rng.uniform(-40, 40)
    if out is not img:  # back to uint8 only when light or contrast changed it
        out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3 * strength:  # low resolution
        f = rng.uniform(0.3, 0.8)
        small = cv2.resize(out, (max(2, int(w * f)), max(2, int(h * f))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=rng.choice([cv2.INTER_LINEAR, cv2.INTER_NEAREST]))
    r = rng.random()
    if r < 0.25 * strength:
        k = rng.choice([3, 5])
        out = cv2.GaussianBlur(out, (k, k), rng.uniform(0.5, 1.5))
    elif r < 0.35 * strength:  # motion blur
        k = rng.choice([3, 5, 7])
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        M = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, M, (k, k))
        out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))
    if rng.random() < 0.3 * strength:
        noise = np.empty(out.shape, np.int16)
        cv2.setRNGSeed(rng.getrandbits(31))
        cv2.randn(noise, 0, rng.uniform(2, 12))
        out = cv2.add(out, noise, dtype=cv2.CV_8U)
    if rng.random() < 0.4 * strength:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(15, 80)])
        if ok:
            out = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
    return out.copy() if out is img else out  # always a new array
