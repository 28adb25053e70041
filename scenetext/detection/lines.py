"""Text-line construction from CTPN proposals (the released code's graph builder and connector,
with the paper's side refinement and quadrilateral output).

1. proposal scores are min-max normalised over the image;
2. each proposal looks right up to ``max_gap`` px for the nearest column holding proposals that
   overlap it vertically (overlap / smaller height >= ``min_v_overlap``) and have a similar height
   (smaller / larger >= ``min_size_similarity``), and takes the best-scoring one; the edge is kept
   only if the proposal is, by the same rule looking left, that successor's best predecessor;
3. chains of edges are lines. Top and bottom edges are fitted by least squares to the proposals'
   top and bottom y against their x-centres, so a slanted line becomes a quadrilateral (a proposal
   spans the text's extent over its whole 16-px column, which overstates a slanted edge by
   ``8 * |slope|``: the fit is moved back by that much). Line score = mean proposal score. The
   line's ends move to the x predicted by side refinement of its end proposals;
4. lines with fewer than ``min_proposals`` proposals, width / height < ``min_ratio``, score <
   ``min_score`` or width < ``min_width`` px are dropped, then lines go through NMS at
   ``nms_threshold`` (polygon IoU).

Words: a kept line is split where the gap between consecutive proposals exceeds
``word_gap`` x the line height (:func:`split_words`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..evaluation.iou import iou_matrix, polygon
from .anchors import ANCHOR_WIDTH
from .proposals import Proposals

#: A line from :func:`connect_grouped`: its quad, its score and its words' (quad, score) pairs.
Grouped = tuple[np.ndarray, float, list[tuple[np.ndarray, float]]]


@dataclass
class LineConfig:
    max_gap: float = 50.0
    min_v_overlap: float = 0.7
    min_size_similarity: float = 0.7
    normalize_scores: bool = True
    side_refinement: bool = True
    side_distance: float = 32.0  # refined ends stay within this distance of their slice centre
    min_proposals: int = 2
    min_ratio: float = 1.2
    min_score: float = 0.7
    min_width: float = 32.0
    nms_threshold: float = 0.3
    # Proposals sit on a 16-px grid, so a gap between them is a whole empty column or more; with
    # 0.1 any empty column inside a line of ordinary height ends a word. Chosen on training data
    # (IoU word hmean, an earlier detector): ic03_train 0.479 at 0.6 -> 0.677 at 0.1, the
    # held-out pasted-crop scenes 0.419 -> 0.530; 0.0-0.15 were within 0.004, 0.2 and up lower.
    # (Side-refining the word ends at such gaps changed these by +0.002 / -0.004: not done.)
    word_gap: float = 0.1


@dataclass
class TextLine:
    """A line (or word): its proposals left to right, x extent, fitted edges ``y = a * x + b``."""

    indices: np.ndarray
    x0: float
    x1: float
    top: tuple[float, float]
    bottom: tuple[float, float]
    score: float

    def _y(self, edge: tuple[float, float], x: float) -> float:
        return edge[0] * x + edge[1]

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        """Height at the middle of the line."""
        middle = (self.x0 + self.x1) / 2
        return self._y(self.bottom, middle) - self._y(self.top, middle)

    def quad(self) -> np.ndarray:
        """``(4, 2)`` float32 corners, clockwise from the top-left."""
        corners = [(self.x0, self._y(self.top, self.x0)), (self.x1, self._y(self.top, self.x1)),
                   (self.x1, self._y(self.bottom, self.x1)), (self.x0, self._y(self.bottom, self.x0))]
        return np.asarray(corners, dtype=np.float32)


def normalize_scores(scores: np.ndarray) -> np.ndarray:
    """Min-max normalisation to [0, 1]; all ones when the scores are all equal."""
    if len(scores) == 0:
        return scores
    low, high = scores.min(), scores.max()
    if high - low < 1e-6:
        return np.ones_like(scores)
    return (scores - low) / (high - low)


def _candidate_pairs(columns: np.ndarray, max_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``(i, j)`` with ``0 < columns[j] - columns[i] <= max_columns``."""
    order = np.argsort(columns, kind="stable")
    sorted_cols = columns[order]
    start = np.searchsorted(sorted_cols, columns + 1, side="left")
    end = np.searchsorted(sorted_cols, columns + max_columns, side="right")
    counts = end - start
    i = np.repeat(np.arange(len(columns)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return i, order[np.repeat(start, counts) + offsets]


def _first_per_key(keys: np.ndarray, order: np.ndarray, size: int) -> np.ndarray:
    """For entries sorted by ``order``: per key, the position of its first entry; -1 if none."""
    out = np.full(size, -1, dtype=np.int64)
    ranked = keys[order]
    first = np.ones(len(order), bool)
    first[1:] = ranked[1:] != ranked[:-1]
    out[ranked[first]] = order[first]
    return out


def link_proposals(boxes: np.ndarray, scores: np.ndarray, cfg: LineConfig) -> np.ndarray:
    """Successor of each proposal (-1 for none) under the mutual-best rule of step 2."""
    n = len(boxes)
    columns = np.rint(boxes[:, 0] / ANCHOR_WIDTH).astype(np.int64)
    i, j = _candidate_pairs(columns, int(cfg.max_gap // ANCHOR_WIDTH))
    heights = boxes[:, 3] - boxes[:, 1]
    overlap = np.minimum(boxes[i, 3], boxes[j, 3]) - np.maximum(boxes[i, 1], boxes[j, 1])
    smaller, larger = np.minimum(heights[i], heights[j]), np.maximum(heights[i], heights[j])
    with np.errstate(divide="ignore", invalid="ignore"):
        meet = (overlap >= cfg.min_v_overlap * smaller) & (smaller >= cfg.min_size_similarity * larger) & (smaller > 0)
    i, j = i[meet], j[meet]
    if len(i) == 0:  # no pair qualifies (the indexing below needs at least one)
        return np.full(n, -1, dtype=np.int64)
    distance = columns[j] - columns[i]
    # Nearest column first, then the best score: the first entry per proposal wins.
    successor_of = _first_per_key(i, np.lexsort((-scores[j], distance, i)), n)
    predecessor_of = _first_per_key(j, np.lexsort((-scores[i], distance, j)), n)
    successor = np.where(successor_of >= 0, j[successor_of], -1)
    predecessor = np.where(predecessor_of >= 0, i[predecessor_of], -1)
    mutual = (successor >= 0) & (predecessor[np.maximum(successor, 0)] == np.arange(n))
    return np.where(mutual, successor, -1)


def chains(successor: np.ndarray) -> list[np.ndarray]:
    """Follow successor links from every proposal that has no predecessor (singletons included)."""
    has_predecessor = np.zeros(len(successor), bool)
    has_predecessor[successor[successor >= 0]] = True
    out = []
    for start in np.flatnonzero(~has_predecessor):
        chain = [start]
        while successor[chain[-1]] >= 0:
            chain.append(successor[chain[-1]])
        out.append(np.asarray(chain, dtype=np.int64))
    return out


def _fit_edge(x: np.ndarray, y: np.ndarray, sign: float) -> tuple[float, float]:
    """Least-squares line ``y = a * x + b`` through slice edges, moved by ``sign * 8 * |a|`` from
    the slice extreme to the edge at the slice centre."""
    if len(x) < 2:
        return 0.0, float(y.mean())
    a, b = np.polyfit(x, y, 1)
    return float(a), float(b + sign * ANCHOR_WIDTH / 2 * abs(a))


def make_line(indices: np.ndarray, proposals: Proposals, scores: np.ndarray, cfg: LineConfig) -> TextLine:
    """Step 3 for one chain (``indices`` left to right)."""
    boxes = proposals.boxes[indices]
    centres = (boxes[:, 0] + boxes[:, 2]) / 2
    top, bottom = _fit_edge(centres, boxes[:, 1], +1.0), _fit_edge(centres, boxes[:, 3], -1.0)
    x0, x1 = float(boxes[0, 0]), float(boxes[-1, 2])
    if cfg.side_refinement:
        reach = cfg.side_distance
        left = float(np.clip(proposals.side_x[indices[0]], centres[0] - reach, centres[0] + reach))
        right = float(np.clip(proposals.side_x[indices[-1]], centres[-1] - reach, centres[-1] + reach))
        if right > left:
            x0, x1 = left, right
    return TextLine(indices, x0, x1, top, bottom, float(scores[indices].mean()))


def _keep(line: TextLine, cfg: LineConfig) -> bool:
    """Step 4's filters (the proposal count is checked before fitting)."""
    height = line.height
    return (height > 0 and line.width / height >= cfg.min_ratio and line.score >= cfg.min_score
            and line.width >= cfg.min_width)


def grow_vertically(quad: np.ndarray, margin: float) -> np.ndarray:
    """A quadrilateral (clockwise from top-left) grown by ``margin`` times its height above and
    below: the top corners move up and the bottom ones down along the left and right sides."""
    tl, tr, br, bl = np.asarray(quad, np.float32)
    left, right = (bl - tl) * margin, (br - tr) * margin
    return np.stack([tl - left, tr - right, br + right, bl + left]).astype(np.float32)


def nms_quads(quads: list[np.ndarray], scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS on polygons: indices kept, best score first."""
    shapes = np.empty(len(quads), dtype=object)
    shapes[:] = [polygon(q) for q in quads]
    iou = iou_matrix(shapes, shapes)
    keep = []
    for index in np.argsort(-np.asarray(scores), kind="stable"):
        if all(iou[index, k] <= threshold for k in keep):
            keep.append(index)
    return np.asarray(keep, dtype=np.int64)


def build_lines(proposals: Proposals, cfg: LineConfig | None = None) -> list[TextLine]:
    """Steps 1-4: the kept lines, best score first."""
    cfg = cfg or LineConfig()
    if len(proposals) == 0:
        return []
    scores = normalize_scores(proposals.scores) if cfg.normalize_scores else proposals.scores
    successor = link_proposals(proposals.boxes, scores, cfg)
    lines = [make_line(chain, proposals, scores, cfg) for chain in chains(successor) if len(chain) >= cfg.min_proposals]
    lines = [line for line in lines if _keep(line, cfg)]
    if not lines:
        return []
    keep = nms_quads([line.quad() for line in lines], np.array([line.score for line in lines]), cfg.nms_threshold)
    return [lines[k] for k in keep]


def split_words(line: TextLine, proposals: Proposals, gap: float = 0.1,
                scores: np.ndarray | None = None) -> list[TextLine]:
    """Split a line where consecutive proposals are more than ``gap`` x the line height apart.

    Words keep the line's fitted edges; inner word ends are slice edges, the outer ends are the
    line's (side-refined) ends. ``scores`` (default: the proposals' own) give each word's score.
    """
    scores = proposals.scores if scores is None else scores
    boxes = proposals.boxes[line.indices]
    spaces = boxes[1:, 0] - boxes[:-1, 2]
    cuts = np.flatnonzero(spaces > gap * line.height) + 1
    words = []
    for part in np.split(np.arange(len(line.indices)), cuts):
        x0 = line.x0 if part[0] == 0 else float(boxes[part[0], 0])
        x1 = line.x1 if part[-1] == len(line.indices) - 1 else float(boxes[part[-1], 2])
        indices = line.indices[part]
        words.append(TextLine(indices, x0, x1, line.top, line.bottom, float(scores[indices].mean())))
    return words


def connect_grouped(proposals: Proposals, cfg: LineConfig | None = None) -> list[Grouped]:
    """Proposals to lines with their words: ``(quad, score, [(word quad, word score), ...])`` per
    line, best line first, its words left to right (quads (4, 2) float32 clockwise from top-left)."""
    cfg = cfg or LineConfig()
    lines = build_lines(proposals, cfg)
    scores = normalize_scores(proposals.scores) if cfg.normalize_scores else proposals.scores
    return [(line.quad(), line.score, [(word.quad(), word.score)
                                       for word in split_words(line, proposals, cfg.word_gap, scores)])
            for line in lines]


def connect(proposals: Proposals, cfg: LineConfig | None = None, level: str = "line") -> list[tuple[np.ndarray, float]]:
    """Proposals to ``(quad (4, 2) float32 clockwise from top-left, score)`` for each line, or each
    word of each line when ``level == "word"``."""
    if level not in ("line", "word"):
        raise ValueError(f"level must be 'line' or 'word', got {level!r}")
    grouped = connect_grouped(proposals, cfg)
    if level == "word":
        return [word for _, _, words in grouped for word in words]
    return [(quad, score) for quad, score, _ in grouped]
