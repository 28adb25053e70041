"""Contact sheets of synthetic samples, so a person can judge them at a glance."""

from __future__ import annotations

import cv2
import numpy as np

from .datasets import SynthSceneDataset, SynthWordDataset


def _put_label(img: np.ndarray, text: str, org, scale: float = 0.4) -> None:
    for color, thick in (((255, 255, 255), 3), ((0, 0, 0), 1)):
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def word_sheet(n: int = 64, seed: int = 0, cols: int = 4, cell_w: int = 256) -> np.ndarray:
    """RGB grid of `n` word crops, each with its label printed under it."""
    ds = SynthWordDataset(n, seed)
    cell_h = 32 + 18
    rows = -(-n // cols)
    sheet = np.full((rows * cell_h, cols * cell_w, 3), 255, np.uint8)
    for i in range(n):
        img, label = ds[i]
        if img.shape[1] > cell_w - 8:
            img = cv2.resize(img, (cell_w - 8, 32), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, cols)
        y, x = r * cell_h, c * cell_w + 4
        sheet[y : y + 32, x : x + img.shape[1]] = img
        _put_label(sheet, label, (x, y + 32 + 13))
    return sheet


def scene_sheet(n: int = 8, seed: int = 0, cols: int = 2, scale: float = 0.75) -> np.ndarray:
    """RGB grid of `n` scenes with word boxes (green) and line boxes (red) drawn."""
    ds = SynthSceneDataset(n, seed)
    tiles = []
    for i in range(n):
        img, words, lines = ds[i]
        img = img.copy()
        for ln in lines:
            cv2.polylines(img, [np.round(ln.points).astype(np.int32)], True, (255, 0, 0), 2, cv2.LINE_AA)
        for w in words:
            cv2.polylines(img, [np.round(w.points).astype(np.int32)], True, (0, 255, 0), 1, cv2.LINE_AA)
        tiles.append(cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    h, w = tiles[0].shape[:2]
    rows = -(-n // cols)
    sheet = np.full((rows * (h + 4), cols * (w + 4), 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * (h + 4) : r * (h + 4) + h, c * (w + 4) : c * (w + 4) + w] = t
    return sheet
