"""Decode CTPN outputs of one image into text proposals: 16-px-wide slices with a text score and
the x of a line end predicted by side refinement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anchors import ANCHOR_HEIGHTS, decode_side, decode_vertical, make_anchors


@dataclass
class Proposals:
    boxes: np.ndarray  # (N, 4) float32 (x0, y0, x1, y1)
    scores: np.ndarray  # (N,) float32 text probability
    side_x: np.ndarray  # (N,) float32 x of the line end this slice predicts (side refinement)

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index) -> "Proposals":
        return Proposals(self.boxes[index], self.scores[index], self.side_x[index])


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``(4,)`` box with ``(N, 4)`` boxes (0 where the union is empty)."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of kept boxes, best score first. A box is dropped
    when its IoU with a kept, better box is above ``threshold``."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, order = order[0], order[1:]
        keep.append(best)
        order = order[box_iou(boxes[best], boxes[order]) <= threshold]
    return np.asarray(keep, dtype=np.int64)


def text_probability(scores: np.ndarray) -> np.ndarray:
    """Softmax probability of class 1 (text) from ``(..., 2)`` logits."""
    return 1.0 / (1.0 + np.exp(np.clip(scores[..., 0] - scores[..., 1], -50, 50)))


def decode_proposals(scores: np.ndarray, vertical: np.ndarray, side: np.ndarray, image_size: tuple[int, int],
                     score_threshold: float = 0.7, nms_threshold: float = 0.3,
                     heights=ANCHOR_HEIGHTS) -> Proposals:
    """Proposals from one image's outputs (``(h, w, k, 2)``, ``(h, w, k, 2)``, ``(h, w, k)`` arrays).

    Each anchor gives the box ``x0 = 16 * col``, ``x1 = x0 + 16`` with the decoded vertical extent,
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
    return proposals.take(nms(boxes, proposals.scores, nms_threshold))
