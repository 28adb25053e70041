"""Decode CTPN outputs of one image into text proposals: 16-px-wide slices with a text score and
the x of a line end predicted by side refinement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anchors import (
    ANCHOR_HEIGHTS,
    ANCHOR_WIDTH,
    decode_side,
    decode_vertical,
    make_anchors,
)


@dataclass
class Proposals:
    boxes: np.ndarray  # (N, 4) float32 (x0, y0, x1, y1)
    scores: np.ndarray  # (N,) float32 text probability
    side_x: np.ndarray  # (N,) float32 x of the line end this slice predicts (side refinement)

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index) -> "Proposals":
        return Proposals(self.boxes[index], self.scores[index], self.side_x[index])

    def shifted(self, dx: float, dy: float) -> "Proposals":
        """The same proposals moved by ``(dx, dy)`` pixels."""
        return Proposals(self.boxes + np.float32([dx, dy, dx, dy]), self.scores, self.side_x + np.float32(dx))

    @staticmethod
    def concatenate(parts: list["Proposals"]) -> "Proposals":
        return Proposals(np.concatenate([p.boxes for p in parts]).reshape(-1, 4).astype(np.float32),
                         np.concatenate([p.scores for p in parts]).astype(np.float32),
                         np.concatenate([p.side_x for p in parts]).astype(np.float32))


def slice_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression for slices on the 16-px grid: indices kept, best first.

    A box is dropped when its IoU with a kept, better box is above ``threshold``. Slices overlap
    only within their own column, where they share the x range and IoU is the vertical overlap
    over the vertical union, so all columns are suppressed together, one rank at a time: the
    loop runs (slices per column) times instead of (kept slices) times.
    """
    columns = np.rint(boxes[:, 0] / ANCHOR_WIDTH).astype(np.int64)
    order = np.lexsort((-scores, columns))  # by column, best first within a column
    _, group, counts = np.unique(columns[order], return_inverse=True, return_counts=True)
    rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    grid = np.full((len(counts), counts.max(initial=0)), -1, dtype=np.int64)
    grid[group, rank] = order
    y0, y1 = boxes[grid, 1], boxes[grid, 3]
    alive = grid >= 0
    for r in range(grid.shape[1] - 1):
        rows = np.flatnonzero(alive[:, r])
        top, bottom = y0[rows, r, None], y1[rows, r, None]
        inter = np.clip(np.minimum(bottom, y1[rows, r + 1 :]) - np.maximum(top, y0[rows, r + 1 :]), 0, None)
        union = (bottom - top) + (y1[rows, r + 1 :] - y0[rows, r + 1 :]) - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        alive[rows, r + 1 :] &= iou <= threshold
    keep = grid[alive]
    return keep[np.argsort(-scores[keep], kind="stable")]


def text_probability(scores: np.ndarray) -> np.ndarray:
    """Softmax probability of class 1 (text) from ``(..., 2)`` logits."""
    return 1.0 / (1.0 + np.exp(np.clip(scores[..., 0] - scores[..., 1], -50, 50)))


def decode_proposals(scores: np.ndarray, vertical: np.ndarray, side: np.ndarray, image_size: tuple[int, int],
                     score_threshold: float = 0.7, nms_threshold: float = 0.3,
                     heights=ANCHOR_HEIGHTS) -> Proposals:
    """Proposals from one image's outputs (``(h, w, k, 2)``, ``(h, w, k, 2)``, ``(h, w, k)`` arrays).

    Each anchor gives the box ``x0 = 16 * col``, ``x1 = x0 + 16`` (continuous coordinates: the
    original code's inclusive pixel box ``[x0, x0 + 15]``) with the decoded vertical extent,
    clipped to ``image_size = (height, width)``; those scoring above ``score_threshold`` go
    through NMS at ``nms_threshold``.
    """
    prob = text_probability(scores)
    keep = prob > score_threshold
    anchors = make_anchors(*prob.shape[:2], tuple(heights))[keep]
    cy, h = decode_vertical((anchors[:, 1] + anchors[:, 3]) / 2, anchors[:, 3] - anchors[:, 1], vertical[keep])
    height, width = image_size
    boxes = np.stack([anchors[:, 0], cy - h / 2, anchors[:, 2], cy + h / 2], axis=1)
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    side_x = decode_side((anchors[:, 0] + anchors[:, 2]) / 2, side[keep])
    proposals = Proposals(boxes, prob[keep].astype(np.float32), side_x)
    return proposals.take(slice_nms(boxes, proposals.scores, nms_threshold))
