"""Contact sheets of synthetic samples, so a person can judge them at a glance."""

from __future__ import annotations

import random

import cv2
import numpy as np

from .datasets import SynthSceneDataset, SynthWordDataset


def _put_label(img: np.ndarray, text: str, org, scale: float = 0.4) -> None:
    for color, thick in (((255, 255, 255), 3), ((0, 0, 0), 1)):
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def word_sheet(n: int = 64, seed: int = 0, cols: int = 4, cell_w: int = 256) -> np.ndarray:
    """RGB grid of `n` word crops, each with its label printed under it."""
    ds = SynthWordDataset(n, seed)
    return _crop_grid([ds[i] for i in range(n)], cols, cell_w)


def _crop_grid(crops, cols: int, cell_w: int, top: int = 0) -> np.ndarray:
    """RGB grid of (crop of height 32, label) pairs, each label printed under its crop, below a
    blank band `top` pixels high."""
    cell_h = 32 + 18
    rows = -(-len(crops) // cols)
    sheet = np.full((top + rows * cell_h, cols * cell_w, 3), 255, np.uint8)
    for i, (img, label) in enumerate(crops):
        if img.shape[1] > cell_w - 8:
            img = cv2.resize(img, (cell_w - 8, 32), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, cols)
        y, x = top + r * cell_h, c * cell_w + 4
        sheet[y : y + 32, x : x + img.shape[1]] = img
        _put_label(sheet, label, (x, y + 32 + 13))
    return sheet


def at_height(rgb: np.ndarray, height: int = 32) -> np.ndarray:
    """A crop scaled to `height`, keeping its aspect ratio (the recogniser's view of it)."""
    h, w = rgb.shape[:2]
    width = max(1, round(w * height / h))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)


def beside_real_sheet(real_sets, n: int = 24, seed: int = 0, cols: int = 2, cell_w: int = 200) -> np.ndarray:
    """Synthetic word crops beside real ones: a block of `n` synthetic crops, then a block of `n`
    crops drawn at random (seeded) from each real recognition set in `real_sets` (folders with
    labels.tsv), all at height 32, each block headed by its source's name."""
    from pathlib import Path

    from ..data.formats import read_rec_set
    from ..imageio import load_image

    ds = SynthWordDataset(n, seed)
    blocks = [("synthetic", [ds[i] for i in range(n)])]
    for folder in map(Path, real_sets):
        samples = read_rec_set(folder)
        picked = random.Random(seed).sample(samples, min(n, len(samples)))
        blocks.append((folder.name, [(at_height(load_image(s.image)), s.text) for s in picked]))
    top, gap = 26, 12
    grids = []
    for name, crops in blocks:
        grid = _crop_grid(crops, cols, cell_w, top=top)
        _put_label(grid, name, (6, 18), scale=0.55)
        grids.append(grid)
    height = max(g.shape[0] for g in grids)
    sheet = np.full((height, sum(g.shape[1] for g in grids) + gap * (len(grids) - 1), 3), 255, np.uint8)
    x = 0
    for grid in grids:
        sheet[: grid.shape[0], x : x + grid.shape[1]] = grid
        sheet[:, x + grid.shape[1] : x + grid.shape[1] + gap] = 200  # a grey rule between blocks
        x += grid.shape[1] + gap
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
