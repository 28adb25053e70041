"""Line crops: perspective warp, splitting of over-long lines, merging, word boxes.

Geometry conventions
--------------------
A line is a quadrilateral ``(4, 2)`` in image pixels, clockwise from its top-left corner.
:func:`crop_line` warps it to an upright rectangle with a perspective transform (a slanted or
perspective-distorted line comes out straight) and keeps the homography from crop pixels back
to image pixels, so that any position found in the crop (a word's extent) can be mapped back.

* Padding: ``PAD_Y`` = 10 % of the line height above and below, ``PAD_X`` = 20 % of the line
  height left and right. Both scale with the height because character size does; a detector's
  box often cuts ascenders, descenders and the first or last letter's edge, and the recogniser
  was trained on crops with small margins. Pixels outside the photo repeat its border.
* Resolution: the crop keeps the line's own resolution, but its height is clamped to
  ``[MIN_HEIGHT, MAX_HEIGHT]`` = [32, 128] px (the recogniser reads height 32; warping straight to
  at most 4x that bounds memory on huge photos without losing detail).
* Vertical lines: a quad more than ``VERTICAL_RATIO`` = 1.5 times taller than wide is read as text
  rotated 90 degrees clockwise (running top to bottom, as on English book spines): its corners
  are relabelled so that the warp rotates it upright. Its polygons then start at the text's own
  top-left corner (the image's top-right).
* Over-long lines: a crop wider than ``MAX_ASPECT`` = 25 heights (the recogniser squashes beyond
  its maximum width) is cut into equal pieces that overlap by ``OVERLAP`` = 2 heights (3-4
  characters). Pieces are read separately and merged by :func:`merge_readings`: where the reader
  gives character positions, each piece keeps the characters whose centre lies on its side of the
  middle of each overlap (a geometric cut: no character is lost or doubled and positions stay
  exact); otherwise the texts are joined at the longest suffix of one that is a prefix of the next
  (:func:`merge_texts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

__all__ = [
    "CropPiece",
    "LineCrop",
    "Reading",
    "WordSpan",
    "crop_line",
    "merge_readings",
    "merge_texts",
    "quad_size",
    "reading_order",
    "split_crop",
    "word_spans",
]

PAD_X = 0.20
PAD_Y = 0.10
MIN_HEIGHT = 32
MAX_HEIGHT = 128
VERTICAL_RATIO = 1.5
MAX_ASPECT = 25.0
OVERLAP = 2.0


def quad_size(quad: np.ndarray) -> tuple[float, float]:
    """``(width, height)`` of a quadrilateral: the means of its opposite edges' lengths."""
    q = np.asarray(quad, dtype=np.float64)
    width = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    return float(width), float(height)


def span_of(words: Sequence[np.ndarray]) -> np.ndarray:
    """The quadrilateral from the first of a line's word boxes (quads clockwise from the
    top-left, left to right) to the last: its left edge and the last one's right edge."""
    return np.stack([words[0][0], words[-1][1], words[-1][2], words[0][3]]).astype(np.float32)


def reading_order(quad: np.ndarray, vertical_ratio: float = VERTICAL_RATIO) -> np.ndarray:
    """The quad with its corners starting at the text's top-left.

    A quad taller than ``vertical_ratio`` times its width holds text rotated 90 degrees
    clockwise, whose top-left is the image's top-right corner: the corners are rotated by one.
    """
    quad = np.asarray(quad, dtype=np.float32)
    width, height = quad_size(quad)
    return np.roll(quad, -1, axis=0) if height > vertical_ratio * width else quad


@dataclass
class LineCrop:
    """An upright crop of one line.

    Attributes:
        image: the crop, RGB ``uint8``.
        to_image: 3x3 homography from crop pixels to image pixels.
        inner: ``(x0, y0, x1, y1)``, the line quad's rectangle inside the padded crop.
        quad: the line quad in image pixels, corners in reading order.
    """

    image: np.ndarray
    to_image: np.ndarray
    inner: tuple[float, float, float, float]
    quad: np.ndarray

    def map_to_image(self, points: np.ndarray) -> np.ndarray:
        """Crop-pixel points ``(N, 2)`` to image pixels."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(pts, self.to_image).reshape(-1, 2).astype(np.float32)

    def span_to_image(self, left: float, right: float) -> np.ndarray:
        """The quad ``(4, 2)`` covering crop columns ``[left, right]`` over the line's height."""
        _, y0, _, y1 = self.inner
        return self.map_to_image(np.array([[left, y0], [right, y0], [right, y1], [left, y1]]))


def crop_line(image: np.ndarray, quad: np.ndarray, pad_x: float = PAD_X, pad_y: float = PAD_Y,
              min_height: int = MIN_HEIGHT, max_height: int = MAX_HEIGHT,
              vertical_ratio: float = VERTICAL_RATIO) -> LineCrop:
    """Warp the line ``quad`` of ``image`` (RGB) to an upright, padded crop (see module notes)."""
    quad = reading_order(quad, vertical_ratio)
    width, height = quad_size(quad)
    height = max(height, 1.0)
    padded_height = height * (1 + 2 * pad_y)
    out_height = int(round(min(max(padded_height, min_height), max_height)))
    scale = out_height / padded_height
    px, py = pad_x * height * scale, pad_y * height * scale
    inner_w, inner_h = max(width * scale, 1.0), height * scale
    out_width = max(1, int(round(inner_w + 2 * px)))
    inner = (px, py, px + inner_w, py + inner_h)
    target = np.array([[inner[0], inner[1]], [inner[2], inner[1]], [inner[2], inner[3]], [inner[0], inner[3]]],
                      dtype=np.float32)
    to_crop = cv2.getPerspectiveTransform(quad, target)
    crop = cv2.warpPerspective(image, to_crop, (out_width, out_height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    return LineCrop(crop, np.linalg.inv(to_crop), inner, quad)


# --------------------------------------------------------------------------- over-long lines


@dataclass
class CropPiece:
    """A slice of a line crop: ``image`` starts at column ``offset`` of the crop, and the piece
    reports the characters whose centre lies in crop columns ``[keep[0], keep[1])``."""

    image: np.ndarray
    offset: int
    keep: tuple[float, float]


def split_crop(crop: np.ndarray, max_aspect: float = MAX_ASPECT, overlap: float = OVERLAP) -> list[CropPiece]:
    """Cut a crop wider than ``max_aspect`` heights into equal pieces overlapping by ``overlap``
    heights; a crop that fits is returned as one piece."""
    height, width = crop.shape[:2]
    max_width = max_aspect * height
    if width <= max_width:
        return [CropPiece(crop, 0, (-math.inf, math.inf))]
    step_overlap = overlap * height
    count = math.ceil((width - step_overlap) / (max_width - step_overlap))
    piece_width = math.ceil((width + (count - 1) * step_overlap) / count)
    starts = [round(i * (width - piece_width) / (count - 1)) for i in range(count)]
    cuts = [(starts[i + 1] + starts[i] + piece_width) / 2 for i in range(count - 1)]
    bounds = [-math.inf, *cuts, math.inf]
    return [CropPiece(crop[:, s:s + piece_width], s, (bounds[i], bounds[i + 1])) for i, s in enumerate(starts)]


@dataclass
class Reading:
    """What the recogniser read in a crop.

    ``char_spans`` holds each character's ``(left, right)`` columns in the crop's pixels and
    ``char_confidences`` its probability; both are empty when the decoder gave no positions
    (lexicon decoding, or beam search disagreeing with the greedy path).
    """

    text: str
    confidence: float
    char_confidences: list[float] = field(default_factory=list)
    char_spans: list[tuple[float, float]] = field(default_factory=list)

    @property
    def has_positions(self) -> bool:
        """True when every character has a span and a confidence."""
        return len(self.char_spans) == len(self.char_confidences) == len(self.text)


def merge_texts(left: str, right: str) -> str:
    """Join two overlapping readings at the longest suffix of ``left`` that starts ``right``."""
    for k in range(min(len(left), len(right)), 0, -1):
        if left.endswith(right[:k]):
            return left + right[k:]
    return left + right


def merge_readings(pieces: Sequence[CropPiece], readings: Sequence[Reading]) -> Reading:
    """One reading for a line from its pieces' readings (see the module notes)."""
    if len(readings) == 1:
        return readings[0]
    if not all(r.has_positions for r in readings):
        text = readings[0].text
        for reading in readings[1:]:
            text = merge_texts(text, reading.text)
        return Reading(text, float(np.mean([r.confidence for r in readings])))
    chars, confidences, spans = [], [], []
    for piece, reading in zip(pieces, readings):
        for char, conf, (a, b) in zip(reading.text, reading.char_confidences, reading.char_spans):
            a, b = a + piece.offset, b + piece.offset
            if piece.keep[0] <= (a + b) / 2 < piece.keep[1]:
                chars.append(char)
                confidences.append(conf)
                spans.append((a, b))
    if confidences:
        confidence = float(np.exp(np.mean(np.log(np.maximum(confidences, 1e-12)))))
    else:
        confidence = float(np.mean([r.confidence for r in readings]))
    return Reading("".join(chars), confidence, confidences, spans)


# --------------------------------------------------------------------------- words


@dataclass
class WordSpan:
    """A word of a reading: its text, crop columns ``[left, right]`` and confidence."""

    text: str
    left: float
    right: float
    confidence: float


def word_spans(reading: Reading, left: float, right: float) -> list[WordSpan]:
    """Split a reading at spaces and place each word within crop columns ``[left, right]``.

    The first word starts at ``left`` and the last ends at ``right`` (the detector's line ends
    are the best estimate of the text's outer edges). Between words, character centres come from
    the decoder's positions (spread evenly over ``[left, right]`` when there are none): a word
    reaches half a character pitch (the median distance between neighbouring character centres
    within words) beyond its first and last centres, but never past the midpoint to the next
    word's nearest character. A word's confidence is the geometric mean of its characters' (the
    line's when there are none).
    """
    text = reading.text
    if not text.strip():
        return []
    if reading.has_positions:
        centres = np.array([(a + b) / 2 for a, b in reading.char_spans], dtype=np.float64)
    else:
        centres = left + (np.arange(len(text)) + 0.5) * (right - left) / len(text)
    runs = _word_runs(text)
    pitch = _char_pitch(centres, runs, (right - left) / len(text))
    spans = []
    for k, (start, end) in enumerate(runs):
        lo, hi = left, right
        if k > 0:
            lo = max(centres[start] - pitch / 2, (centres[runs[k - 1][1] - 1] + centres[start]) / 2)
        if k + 1 < len(runs):
            hi = min(centres[end - 1] + pitch / 2, (centres[end - 1] + centres[runs[k + 1][0]]) / 2)
        lo, hi = min(max(lo, left), right), min(max(hi, left), right)
        if reading.has_positions:
            confidence = float(np.exp(np.mean(np.log(np.maximum(reading.char_confidences[start:end], 1e-12)))))
        else:
            confidence = reading.confidence
        spans.append(WordSpan(text[start:end], lo, max(hi, lo), confidence))
    return spans


def _word_runs(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of the space-separated words of ``text``."""
    runs, start = [], None
    for i, char in enumerate(text + " "):
        if char.isspace():
            if start is not None:
                runs.append((start, i))
            start = None
        elif start is None:
            start = i
    return runs


def _char_pitch(centres: np.ndarray, runs: list[tuple[int, int]], default: float) -> float:
    """Median distance between neighbouring character centres inside words (``default`` if none)."""
    steps = np.concatenate([np.diff(centres[s:e]) for s, e in runs] or [np.empty(0)])
    steps = steps[steps > 0]
    return float(np.median(steps)) if steps.size else default
