"""CTPN anchors and their box coding.

Coordinates are continuous pixels: feature cell ``(row, col)`` covers ``x in [16*col, 16*col + 16]``
and ``y in [16*row, 16*row + 16]`` (the same slice as the original code's inclusive pixel box
``[16*col, 16*col + 15]``). Every cell holds one anchor per height in :data:`ANCHOR_HEIGHTS`,
16 px wide and centred on the cell.

Vertical coding (paper): ``v_c = (c_y - c_y^a) / h^a`` and ``v_h = log(h / h^a)``; the x extent
comes from the anchor. Side refinement: ``o = (x_side - c_x^a) / 16``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

STRIDE = 16
ANCHOR_WIDTH = 16
#: Heights of the released code (the paper's 11 / 0.7**i rule ends at 273).
ANCHOR_HEIGHTS = (11, 16, 23, 33, 48, 68, 97, 139, 198, 283)


def feature_size(height: int, width: int) -> tuple[int, int]:
    """Feature-map size for an image: ``ceil(size / 16)`` (the model pads to a multiple of 16)."""
    return -(-height // STRIDE), -(-width // STRIDE)


@lru_cache(maxsize=64)
def make_anchors(feat_h: int, feat_w: int, heights: tuple[float, ...] = ANCHOR_HEIGHTS) -> np.ndarray:
    """Anchors of a feature map as ``(feat_h, feat_w, k, 4)`` float32 ``(x0, y0, x1, y1)`` boxes.

    The result is cached per size and read-only.
    """
    h = np.asarray(heights, np.float32)
    cx = (np.arange(feat_w, dtype=np.float32) + 0.5) * STRIDE
    cy = (np.arange(feat_h, dtype=np.float32) + 0.5) * STRIDE
    shape = (feat_h, feat_w, len(h))
    x0 = np.broadcast_to(cx[None, :, None] - ANCHOR_WIDTH / 2, shape)
    y0 = cy[:, None, None] - h / 2
    anchors = np.stack(np.broadcast_arrays(x0, y0, x0 + ANCHOR_WIDTH, y0 + h), axis=-1).astype(np.float32)
    anchors.flags.writeable = False
    return anchors


def encode_vertical(anchor_cy, anchor_h, cy, h) -> np.ndarray:
    """``(..., 2)`` targets ``(v_c, v_h)`` for boxes of centre ``cy`` and height ``h > 0``."""
    anchor_h = np.asarray(anchor_h, np.float32)
    v_c = (np.asarray(cy, np.float32) - anchor_cy) / anchor_h
    v_h = np.log(np.asarray(h, np.float32) / anchor_h)
    return np.stack([v_c, v_h], axis=-1).astype(np.float32)


def decode_vertical(anchor_cy, anchor_h, deltas) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_vertical`: ``(cy, h)`` from ``(..., 2)`` deltas.

    ``v_h`` is clipped to ``[-10, 10]`` so a wild prediction cannot overflow ``exp``.
    """
    deltas = np.asarray(deltas, np.float32)
    anchor_h = np.asarray(anchor_h, np.float32)
    cy = anchor_cy + deltas[..., 0] * anchor_h
    h = anchor_h * np.exp(np.clip(deltas[..., 1], -10.0, 10.0))
    return cy, h


def encode_side(anchor_cx, x_side) -> np.ndarray:
    """Side-refinement target ``o = (x_side - c_x^a) / 16``."""
    return ((np.asarray(x_side, np.float32) - anchor_cx) / ANCHOR_WIDTH).astype(np.float32)


def decode_side(anchor_cx, offset) -> np.ndarray:
    """Inverse of :func:`encode_side`: the x of a line end."""
    return np.asarray(anchor_cx, np.float32) + np.asarray(offset, np.float32) * ANCHOR_WIDTH
