"""Stand-ins with the real models' interfaces, and generated images, shared by the tests.

Detectors: :class:`FixedDetector` (given quads) and :class:`BlobDetector` (dark blobs);
recogniser: :class:`InkReader` (reads runs of ink as ``x``). The untrained real recogniser is
the ``recognizer`` fixture in conftest.py.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from scenetext.detection.predictor import DetectedText
from scenetext.recognition.decode import Decoded
from scenetext.recognition.preprocess import target_width

# --------------------------------------------------------------------------- stand-ins


class FixedDetector:
    """Returns the given quads for every image."""

    name = "fixed-detector"

    def __init__(self, quads):
        self.quads = [np.asarray(q, dtype=np.float32) for q in quads]

    def detect(self, rgb, level="line"):
        return [DetectedText(q.copy(), 0.9) for q in self.quads]


class WordBoxDetector(FixedDetector):
    """Returns one line, the given quad, with the given word boxes."""

    def __init__(self, line, words):
        super().__init__([line])
        self.words = [np.asarray(w, dtype=np.float32) for w in words]

    def detect(self, rgb, level="line"):
        return [DetectedText(self.quads[0].copy(), 0.9, [w.copy() for w in self.words])]


class BlobDetector:
    """Finds dark blobs (gray < 100) and returns their bounding boxes, top to bottom."""

    name = "blob-detector"

    def __init__(self):
        self.shapes = []

    def detect(self, rgb, level="line"):
        self.shapes.append(rgb.shape)
        dark = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) < 100).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(dark)
        boxes = sorted((y, x, w, h) for x, y, w, h, area in stats[1:count] if area >= 20)
        return [DetectedText(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32), 0.9)
                for y, x, w, h in boxes]


class InkReader:
    """A recogniser stand-in that 'reads' each run of dark columns as the word ``x``.

    It scales crops exactly as the real recogniser does (height 32, width from ``target_width``)
    and reports each character's frames, so word placement can be checked against the ink.
    """

    name = "ink-reader"
    max_width = 1024

    def __init__(self, confidence=lambda crop: 0.9):
        self.confidence = confidence  # a crop's confidence (every character gets it)
        self.calls = []  # the crops of each recognize() call

    def recognize(self, crops, orient=True):
        self.calls.append(list(crops))
        return [self._read(crop) for crop in crops]

    def _read(self, crop):
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        width = target_width(crop.shape[1], crop.shape[0], max_width=self.max_width)
        dark = (cv2.resize(gray, (width, 32)) < 100).any(0)
        runs, start = [], None
        for col, d in enumerate(np.append(dark, False)):
            if d and start is None:
                start = col
            elif not d and start is not None:
                runs.append((start // 4, (col - 1) // 4 + 1))
                start = None
        text, frames = [], []
        for k, run in enumerate(runs):
            if k:
                gap = (runs[k - 1][1] + run[0]) // 2
                text.append(" ")
                frames.append((gap, gap + 1))
            text.append("x")
            frames.append(run)
        conf = self.confidence(crop)
        return Decoded("".join(text), conf, [conf] * len(text), frames)


# --------------------------------------------------------------------------- images


def blank(height, width):
    """A white RGB canvas."""
    return np.full((height, width, 3), 255, np.uint8)


def word_image():
    """A white canvas with one printed word and the word's axis-aligned quad."""
    canvas = blank(300, 600)
    cv2.putText(canvas, "Slanted", (200, 170), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
    ys, xs = np.nonzero(canvas[:, :, 0] < 128)
    quad = np.array([[xs.min() - 2, ys.min() - 2], [xs.max() + 3, ys.min() - 2], [xs.max() + 3, ys.max() + 3],
                     [xs.min() - 2, ys.max() + 3]], np.float32)
    return canvas, quad


def dark_boxes_image(height=120, width=320):
    """A white canvas with two dark boxes: rows 20-44 x columns 30-200, rows 70-100 x columns 40-280."""
    image = blank(height, width)
    image[20:44, 30:200] = 0
    image[70:100, 40:280] = 30
    return image


def save_mode(path, rgb, mode):
    """Save ``rgb`` in a given Pillow mode; returns the path."""
    gray = Image.fromarray(rgb).convert("L")
    if mode == "L":
        gray.save(path)
    elif mode == "RGBA":
        rgba = Image.fromarray(rgb).convert("RGBA")
        rgba.putalpha(255)
        rgba.save(path)
    elif mode == "P":
        Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    elif mode == "I;16":
        Image.fromarray(np.asarray(gray).astype(np.uint16) * 257).save(path)
    elif mode == "CMYK":
        Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
    return path
