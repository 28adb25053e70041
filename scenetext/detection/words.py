"""Word boxes from the photo itself: split a detected word or line where its pixels go blank.

CTPN proposals sit on a 16-px grid, so the proposal-gap split of :func:`~.lines.split_words`
only separates words whose space is at least one empty column of the detector's input: in
small text (a space of 4-8 px) the words of a line stay together. Here each box found at word
level is warped upright to :data:`HEIGHT` px (:func:`~scenetext.crop.crop_line`, no padding) and
its column profile of stroke energy (absolute Sobel gradients summed over the middle rows) is
read: a run of low-energy columns at least ``min_gap`` x the height long inside the box is a
space between words, and the box is cut at its ends. Energy is relative to a high percentile of
the box's own profile, so faint or blurred text is treated like crisp text.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..crop import crop_line, quad_size

__all__ = ["HEIGHT", "InkSplit", "ink_profile", "ink_spans", "split_by_ink", "true_runs"]

#: Height (px) at which a box's profile is read.
HEIGHT = 32


@dataclass(frozen=True)
class InkSplit:
    """Settings of the split (see module notes).

    Attributes:
        threshold: a column is blank when its energy is below this fraction of the profile's
            ``reference`` percentile.
        min_gap: shortest blank run, in box heights, that separates two words.
        min_word: pieces narrower than this many heights are not cut off (a stray stroke, or
            a wide letter's own gap).
        reference: percentile of the profile that counts as full ink.
    """

    # Chosen on training data with an earlier detector (IoU word hmean, level="word"): the
    # held-out pasted-crop scenes (small incidental text) 0.669 unsplit -> 0.807, ic03_train
    # (large, well-spaced words) 0.695 -> 0.697; thresholds 0.04-0.1 and gaps 0.16-0.25 were
    # within 0.01 on the pasted scenes, a gap of 0.12 or a threshold of 0.25 split letters apart.
    threshold: float = 0.08
    min_gap: float = 0.2
    min_word: float = 0.5
    reference: float = 90.0

    # The WordCut interface (detection.predictor): no model of its own, no line rules.
    name = None
    rules = None

    def cut(self, image: np.ndarray, quads: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Each box on RGB ``image`` cut at its blank columns (:func:`split_by_ink`)."""
        return [split_by_ink(image, quad, self) for quad in quads]


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def ink_profile(gray: np.ndarray) -> np.ndarray:
    """Stroke energy per column of an upright grey crop ``(H, W)`` (absolute x and y Sobel
    responses summed over the middle 70 % of the rows; :func:`ink_spans` reads it relative to
    its own percentile)."""
    g = gray.astype(np.float32)
    energy = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
    top = int(round(0.15 * g.shape[0]))
    bottom = max(int(round(0.85 * g.shape[0])), top + 1)
    profile = energy[top:bottom].sum(axis=0)
    if profile.size >= 3:  # a 3-column box filter: one bright column is not a letter, one dark one not a space
        profile = np.convolve(np.pad(profile, 1, mode="edge"), np.ones(3, np.float32) / 3, mode="valid")
    return profile


def ink_spans(profile: np.ndarray, height: float, cfg: InkSplit = InkSplit()) -> list[tuple[int, int]]:
    """Column ranges ``[start, end)`` of the words in a profile (the whole range when no cut)."""
    width = profile.size
    if width == 0:
        return []
    reference = float(np.percentile(profile, cfg.reference))
    if reference <= 0:
        return [(0, width)]
    starts, ends = true_runs(profile < cfg.threshold * reference)  # runs of blank columns
    spans, left = [], 0
    min_gap, min_word = cfg.min_gap * height, cfg.min_word * height
    for s, e in zip(starts, ends):
        if s == 0 or e == width or e - s < min_gap:  # margins and letter gaps
            continue
        if s - left >= min_word and width - e >= min_word:
            spans.append((left, int(s)))
            left = int(e)
    spans.append((left, width))
    return spans


def split_by_ink(image: np.ndarray, quad: np.ndarray, cfg: InkSplit = InkSplit()) -> list[np.ndarray]:
    """The word quads inside ``quad`` (a box on RGB ``image``), left to right; ``[quad]`` when it
    holds one word. Vertical boxes (taller than wide) are left whole."""
    quad = np.asarray(quad, dtype=np.float32)
    width, height = quad_size(quad)
    if height < 1 or width <= height:
        return [quad]
    crop = crop_line(image, quad, pad_x=0.0, pad_y=0.0, min_height=HEIGHT, max_height=HEIGHT)
    gray = cv2.cvtColor(crop.image, cv2.COLOR_RGB2GRAY) if crop.image.ndim == 3 else crop.image
    spans = ink_spans(ink_profile(gray), float(gray.shape[0]), cfg)
    if len(spans) == 1:
        return [quad]
    return [crop.span_to_image(float(a), float(b)) for a, b in spans]
