"""Oriented text lines from CTPN proposals: lines at any angle up to +-90 degrees (vertical signs
included) and long lines with wide gaps, as rotated quadrilaterals.

What the network gives on rotated text: every proposal is a 16-px column slice, so a line at
angle ``a`` with text height ``h`` gives, per column, a slice ``16 |tan a| + h / cos a`` high
whose centre moves ``16 tan a`` from one column to the next. Beyond about 70 degrees a column's
share of the line is taller than the tallest anchor and comes as several overlapping slices
stacked in the column; a vertical line is a few columns (its height) of such stacks.

1. proposal scores are min-max normalised over the image (as in :mod:`.lines`);
2. **runs**: in each column, slices that overlap by at least ``stack_overlap`` of the smaller
   one and reach at least ``stack_extension`` of the larger one's height beyond it are merged
   (a stack of a steep line; a slice nested inside another stays apart);
3. **chains**: runs of nearby columns are linked under the mutual-best rule of
   :func:`.lines.link_proposals`, with the looser ``min_v_overlap`` / ``min_size_similarity``
   of :class:`OrientedConfig` (neighbouring slices of a slanted line overlap by only
   ``h / (h + 16 sin a)`` of their height); a chain is cut where it turns off the direction of
   its last ``window`` runs by more than ``max_turn`` of their height;
4. **geometry** of a chain: its centres' slope ``t`` (least squares) makes it a line at
   ``atan t`` when the strip that reading gives is longer than high, otherwise the runs are
   cross-sections of a near-vertical line (and an empty column between two of them is a gap
   across the text: the chain is cut there). A slice of a line of slope ``t`` spans the text over
   its whole column, so its corners stick out of the text by ``16 |t|`` vertically: it stands for
   the parallelogram with its vertical sides and edges of slope ``t`` (:func:`text_shape`). The
   axis is the principal axis of those shapes' area (:func:`principal_frame`) and the quad is
   made of the extreme projections of the shapes' corners along and across it, so it covers
   every shape (a curved baseline too);
5. **joins**: pieces whose axes agree within ``max_angle`` degrees, that lie on each other's
   axis (offset at most ``max_offset`` heights) and have similar heights are joined when the gap
   between them along the axis is at most ``max_gap`` text heights; a single run, or a piece lying
   inside a line's band (its height widened by ``max_offset`` heights each side), joins it at
   the same gap whatever its own axis; the closest pair first, and the joined line is fitted
   again on the axis of the longer one;
6. lines with fewer than ``min_proposals`` proposals, length / height < ``min_ratio``, score <
   ``min_score`` or length < ``min_width`` px are dropped (:class:`.lines.LineConfig`), then
   lines go through NMS at ``nms_threshold``.

Quads are ``(4, 2)`` float32, clockwise from the top-left. A line within ``vertical_angle`` of
horizontal starts at the text's top-left with its long edge first (the text reads along
its axis from left to right). A steeper one longer than ``crop.VERTICAL_RATIO`` heights is
returned as the image-frame rectangle taller than wide that :mod:`scenetext.crop` reads as text
rotated 90 degrees clockwise (running top to bottom). Words: a line is cut where the space
between its runs along the axis is more than ``word_gap`` x its height. Side refinement is not
used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .anchors import ANCHOR_WIDTH
from ..crop import VERTICAL_RATIO, quad_size
from .lines import Grouped, LineConfig, chains, grow_vertically, link_proposals, nms_quads, normalize_scores
from .proposals import Proposals

__all__ = ["Frame", "OrientedConfig", "OrientedLine", "Runs", "build_oriented", "column_runs",
           "connect_oriented", "grow_across", "principal_frame", "text_shape"]


@dataclass(frozen=True)
class OrientedConfig:
    """Settings of the oriented builder (steps 2-5 of the module notes).

    Attributes:
        stack_overlap: slices of one column overlapping by this share of the smaller one...
        stack_extension: ...and reaching this share of the larger one's height beyond it are
            one run.
        max_columns: links reach this many columns (1: neighbouring columns only).
        min_v_overlap: linked runs overlap vertically by this share of the smaller one.
        min_size_similarity: smaller / larger height of linked runs.
        window: a chain's direction is that of its last this many run centres...
        max_turn: ...and it is cut before a run whose centre is more than this share of their
            mean height off it.
        max_angle: pieces joined across a gap have axes this close (degrees).
        max_offset: ...lie within this many heights of each other's axis...
        min_height_ratio: ...have heights in at least this ratio...
        max_gap: ...and are at most this many text heights apart along the axis.
        vertical_angle: lines steeper than this (degrees) are returned as vertical quads.
    """

    stack_overlap: float = 0.2
    stack_extension: float = 0.25
    max_columns: int = 2
    window: int = 4
    max_turn: float = 0.25
    min_v_overlap: float = 0.5
    min_size_similarity: float = 0.5
    max_angle: float = 12.0
    max_offset: float = 0.4
    min_height_ratio: float = 0.6
    max_gap: float = 2.0
    vertical_angle: float = 75.0


@dataclass
class Runs:
    """Column runs (step 2): one box per run and the proposals merged into it."""

    boxes: np.ndarray  # (R, 4) float32 (x0, y0, x1, y1)
    scores: np.ndarray  # (R,) mean score of the run's proposals
    members: list[np.ndarray]  # proposal indices of each run

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class Frame:
    """A line's axis: ``origin``, unit ``along`` (``x > 0``, or straight down) and ``across``
    (``along`` turned 90 degrees clockwise on screen, i.e. downwards for a level line)."""

    origin: np.ndarray
    along: np.ndarray

    @property
    def across(self) -> np.ndarray:
        return np.array([-self.along[1], self.along[0]])

    @property
    def angle(self) -> float:
        """Degrees from the image's x axis, in ``(-90, 90]`` (positive: descending to the right)."""
        return float(np.degrees(np.arctan2(self.along[1], self.along[0])))

    @property
    def slope(self) -> float:
        """dy / dx of the axis (infinite for a vertical one)."""
        return float(self.along[1] / self.along[0]) if abs(self.along[0]) > 1e-9 else float("inf")

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates along and across the axis of ``(..., 2)`` points."""
        d = np.asarray(points, np.float64) - self.origin
        return d @ self.along, d @ self.across

    def point(self, s: float, r: float) -> np.ndarray:
        """The image point at ``s`` along and ``r`` across the axis."""
        return self.origin + s * self.along + r * self.across


@dataclass
class OrientedLine:
    """A line (or word): its column runs, the text they stand for, its axis and extents."""

    boxes: np.ndarray  # (K, 4) run boxes
    members: list[np.ndarray]  # proposal indices of each run
    shapes: np.ndarray  # (K, 4, 2) text each run stands for (see text_shape)
    frame: Frame
    start: float  # extent along the axis
    end: float
    low: float  # extent across it
    high: float
    score: float

    @property
    def indices(self) -> np.ndarray:
        """Proposal indices of all its runs."""
        return np.concatenate(self.members) if self.members else np.empty(0, np.int64)

    @property
    def oriented(self) -> bool:
        """False for a single run, whose axis says nothing about the line's."""
        return len(self.boxes) > 1

    @property
    def length(self) -> float:
        return self.end - self.start

    @property
    def height(self) -> float:
        return self.high - self.low

    def text_quad(self) -> np.ndarray:
        """Corners from the text's top-left along the axis, clockwise."""
        f = self.frame
        corners = [f.point(self.start, self.low), f.point(self.end, self.low),
                   f.point(self.end, self.high), f.point(self.start, self.high)]
        return np.asarray(corners, np.float32)

    def quad(self, vertical_angle: float = OrientedConfig.vertical_angle) -> np.ndarray:
        """``(4, 2)`` float32 corners clockwise from the top-left (see the module notes)."""
        if abs(self.frame.angle) < vertical_angle or self.length <= VERTICAL_RATIO * self.height:
            return self.text_quad()
        downward = self if self.frame.along[1] > 0 else self._flipped()
        return np.roll(downward.text_quad(), 1, axis=0)

    def _flipped(self) -> "OrientedLine":
        """The same line with its axis pointing the other way."""
        frame = Frame(self.frame.origin, -self.frame.along)
        return replace(self, frame=frame, start=-self.end, end=-self.start, low=-self.high, high=-self.low)


# --------------------------------------------------------------------------- step 2: runs


def _stacked(a: np.ndarray, b: np.ndarray, cfg: OrientedConfig) -> bool:
    """Whether two slices ``(y0, y1)`` of one column are pieces of one stack (step 2)."""
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    smaller, larger = min(a[1] - a[0], b[1] - b[0]), max(a[1] - a[0], b[1] - b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    return overlap >= cfg.stack_overlap * smaller and union - larger >= cfg.stack_extension * larger


def _column_stacks(spans: np.ndarray, cfg: OrientedConfig) -> list[list[int]]:
    """Indices into ``spans`` ``(n, 2)`` (one column, sorted by top) grouped into stacks: each
    slice joins the last group whose extent it stacks onto, or starts one."""
    groups: list[list[int]] = []
    extents: list[np.ndarray] = []
    for k, span in enumerate(spans):
        for g, extent in enumerate(extents):
            if _stacked(extent, span, cfg):
                groups[g].append(k)
                extents[g] = np.array([min(extent[0], span[0]), max(extent[1], span[1])])
                break
        else:
            groups.append([k])
            extents.append(span.copy())
    return groups


def column_runs(boxes: np.ndarray, scores: np.ndarray, cfg: OrientedConfig) -> Runs:
    """Step 2: the proposals ``boxes`` merged into column runs."""
    columns = np.rint(boxes[:, 0] / ANCHOR_WIDTH).astype(np.int64)
    out_boxes, out_scores, members = [], [], []
    for column in np.unique(columns):
        where = np.flatnonzero(columns == column)
        where = where[np.argsort(boxes[where, 1], kind="stable")]
        for group in _column_stacks(boxes[where][:, [1, 3]].astype(np.float64), cfg):
            index = where[group]
            part = boxes[index]
            out_boxes.append([part[:, 0].min(), part[:, 1].min(), part[:, 2].max(), part[:, 3].max()])
            out_scores.append(float(scores[index].mean()))
            members.append(index)
    return Runs(np.asarray(out_boxes, np.float32).reshape(-1, 4), np.asarray(out_scores, np.float32), members)


# --------------------------------------------------------------------------- step 4: geometry


def text_shape(boxes: np.ndarray, slope: float) -> np.ndarray:
    """The text that column slices ``(K, 4)`` stand for on a line of slope ``slope`` (dy/dx):
    ``(K, 4, 2)`` corners clockwise from the top-left.

    A slice higher than its column's rise ``16 |slope|`` spans the text across its column, so it
    stands for the parallelogram with its vertical sides whose top and bottom edges have the
    line's slope (a level line's slices are their own boxes). A lower slice is a piece of a
    stack on a steep line and stands for its box."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = boxes.T
    rise = (x1 - x0) * (abs(slope) if np.isfinite(slope) else np.inf)
    rise = np.where(y1 - y0 > rise, rise, 0.0)
    down = slope > 0  # descending to the right: the top edge falls from left to right
    tl = np.where(down, y0, y0 + rise)
    tr = np.where(down, y0 + rise, y0)
    br = np.where(down, y1, y1 - rise)
    bl = np.where(down, y1 - rise, y1)
    corners = [np.stack([x0, tl], -1), np.stack([x1, tr], -1), np.stack([x1, br], -1), np.stack([x0, bl], -1)]
    return np.stack(corners, axis=1)


def _chords(shapes: np.ndarray, per_shape: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertical chords sampling the shapes' area: their x, top y, bottom y and width."""
    k = (np.arange(per_shape) + 0.5) / per_shape  # positions across each shape, 0..1
    left, right = shapes[:, 0, 0, None], shapes[:, 1, 0, None]
    x = left + k * (right - left)
    top = shapes[:, 0, 1, None] + k * (shapes[:, 1, 1, None] - shapes[:, 0, 1, None])
    bottom = shapes[:, 3, 1, None] + k * (shapes[:, 2, 1, None] - shapes[:, 3, 1, None])
    width = np.broadcast_to((right - left) / per_shape, x.shape)
    return x.ravel(), top.ravel(), bottom.ravel(), width.ravel()


def principal_frame(shapes: np.ndarray) -> Frame:
    """The principal axis of the shapes' area (second moments of uniform vertical chords), its
    origin at their centroid."""
    x, top, bottom, width = _chords(shapes)
    weight = np.maximum(bottom - top, 1e-6) * width
    mid = (top + bottom) / 2
    total = weight.sum()
    cx, cy = (weight * x).sum() / total, (weight * mid).sum() / total
    dx, dy = x - cx, mid - cy
    sxx = (weight * (dx ** 2 + width ** 2 / 12)).sum() / total
    syy = (weight * (dy ** 2 + (bottom - top) ** 2 / 12)).sum() / total
    sxy = (weight * dx * dy).sum() / total
    _, vectors = np.linalg.eigh(np.array([[sxx, sxy], [sxy, syy]]))
    along = vectors[:, 1]
    if along[0] < -1e-9 or (abs(along[0]) <= 1e-9 and along[1] < 0):
        along = -along
    return Frame(np.array([cx, cy]), along / np.linalg.norm(along))


def chain_slope(boxes: np.ndarray) -> float:
    """Slope of the line a chain of column runs (left to right) stands for: its centres' slope
    when the strip it gives is longer than high, else infinite (the runs cut across a steep
    line)."""
    if len(boxes) < 2:
        return float("inf") if boxes[0, 3] - boxes[0, 1] > boxes[0, 2] - boxes[0, 0] else 0.0
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    slope = float(np.polyfit(cx, cy, 1)[0])
    stretch = np.hypot(1.0, slope)
    length = (boxes[-1, 2] - boxes[0, 0]) * stretch
    height = (float(np.mean(boxes[:, 3] - boxes[:, 1])) - ANCHOR_WIDTH * abs(slope)) / stretch
    return slope if length >= height else float("inf")


def fit_line(boxes: np.ndarray, members: list[np.ndarray], slope: float, scores: np.ndarray) -> OrientedLine:
    """The line of run ``boxes`` (proposals ``members``) on a line of ``slope``: its axis and
    extreme extents; its score is its proposals' mean ``scores``."""
    shapes = text_shape(boxes, slope)
    frame = principal_frame(shapes)
    s, r = frame.project(shapes.reshape(-1, 2))
    score = float(scores[np.concatenate(members)].mean())
    return OrientedLine(np.asarray(boxes, np.float32).reshape(-1, 4), list(members), shapes, frame,
                        float(s.min()), float(s.max()), float(r.min()), float(r.max()), score)


# --------------------------------------------------------------------------- step 5: joins


def _angle_between(a: Frame, b: Frame) -> float:
    """Angle between two axes in degrees, 0..90."""
    return float(np.degrees(np.arccos(min(1.0, abs(float(a.along @ b.along))))))


def join_gap(a: OrientedLine, b: OrientedLine, cfg: OrientedConfig) -> float | None:
    """The gap along ``a``'s axis, in its text heights, at which ``b`` may join ``a`` (``a``
    oriented; see step 5), or ``None`` when it may not."""
    height = max(a.height, 1e-6)
    s, r = a.frame.project(text_shape(b.boxes, a.frame.slope).reshape(-1, 2))
    lies_on = r.min() >= a.low - cfg.max_offset * height and r.max() <= a.high + cfg.max_offset * height
    if b.oriented and not lies_on:
        if _angle_between(a.frame, b.frame) > cfg.max_angle:
            return None
        if min(b.height, height) < cfg.min_height_ratio * max(b.height, height):
            return None
        if abs((r.min() + r.max()) / 2 - (a.low + a.high) / 2) > cfg.max_offset * height:
            return None
    elif not lies_on:
        return None  # a single run joins a line it lies on
    gap = max(s.min() - a.end, a.start - s.max(), 0.0) / height
    return gap if gap <= cfg.max_gap else None


def _tried_from(a: OrientedLine, b: OrientedLine, i: int, j: int) -> bool:
    """Whether the pair ``(a, b)`` is tried from ``a``: oriented pairs once, from the longer."""
    if i == j or not a.oriented:
        return False
    return not b.oriented or a.length > b.length or (a.length == b.length and i < j)


def _near(a: OrientedLine, b: OrientedLine, cfg: OrientedConfig) -> bool:
    """A cheap bound: ``b``'s boxes come close enough to ``a``'s for :func:`join_gap` to allow
    a join (a join needs ``b`` within ``max_gap`` heights along and ``max_offset`` heights plus
    its own extent across ``a``)."""
    reach = (cfg.max_gap + cfg.max_offset + 1.0) * max(a.height, 1e-6) + max(b.length, b.height)
    (ax0, ay0), (ax1, ay1) = a.boxes[:, :2].min(axis=0), a.boxes[:, 2:].max(axis=0)
    (bx0, by0), (bx1, by1) = b.boxes[:, :2].min(axis=0), b.boxes[:, 2:].max(axis=0)
    return max(bx0 - ax1, ax0 - bx1, by0 - ay1, ay0 - by1) <= reach


def closest_join(lines: list[OrientedLine], cfg: OrientedConfig,
                 cache: dict[tuple[int, int], float | None] | None = None) -> tuple[int, int] | None:
    """The pair of lines that may join across the smallest gap, or ``None``. ``cache`` keeps
    each pair's gap by the lines' ids between calls."""
    cache = {} if cache is None else cache
    best, pair = np.inf, None
    for i, a in enumerate(lines):
        for j, b in enumerate(lines):
            if not _tried_from(a, b, i, j):
                continue
            key = (id(a), id(b))
            if key not in cache:
                cache[key] = join_gap(a, b, cfg) if _near(a, b, cfg) else None
            gap = cache[key]
            if gap is not None and gap < best:
                best, pair = gap, (i, j)
    return pair


def join_lines(lines: list[OrientedLine], scores: np.ndarray, cfg: OrientedConfig) -> list[OrientedLine]:
    """Step 5: lines joined across gaps, closest pair first, each join fitted again on the axis
    of the line it joined, until no pair may join."""
    lines = list(lines)
    cache: dict[tuple[int, int], float | None] = {}
    made = list(lines)  # every line stays alive here, so no id in the cache is reused
    while (pair := closest_join(lines, cfg, cache)) is not None:
        a, b = lines[pair[0]], lines[pair[1]]
        joined = fit_line(np.concatenate([a.boxes, b.boxes]), a.members + b.members, a.frame.slope, scores)
        made.append(joined)
        lines = [line for k, line in enumerate(lines) if k not in pair] + [joined]
    return lines


# --------------------------------------------------------------------------- steps 1-6


def _link_config(cfg: LineConfig, ocfg: OrientedConfig) -> LineConfig:
    """The :func:`.lines.link_proposals` settings for linking runs (step 3)."""
    return replace(cfg, max_gap=float(ocfg.max_columns * ANCHOR_WIDTH), min_v_overlap=ocfg.min_v_overlap,
                   min_size_similarity=ocfg.min_size_similarity)


def _turns(boxes: np.ndarray, ocfg: OrientedConfig) -> np.ndarray:
    """Positions in a chain of runs (left to right) where it stops following its direction: the
    next run's centre is more than ``max_turn`` of the recent runs' mean height off the line
    through the last ``window`` centres (a straight continuation of the last run after one)."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    heights = boxes[:, 3] - boxes[:, 1]
    cuts, start = [], 0
    for k in range(1, len(boxes)):
        recent = slice(max(start, k - ocfg.window), k)
        if k - recent.start >= 2:
            slope, offset = np.polyfit(cx[recent], cy[recent], 1)
            predicted = slope * cx[k] + offset
        else:
            predicted = cy[k - 1]  # one run: its neighbour in a slanted line moves by its rise
        tolerance = ocfg.max_turn * float(heights[recent].mean())
        if k - recent.start >= 2 and abs(cy[k] - predicted) > tolerance:
            cuts.append(k)
            start = k
    return np.asarray(cuts, np.int64)


def _across_gaps(boxes: np.ndarray) -> np.ndarray:
    """Positions in a chain of runs (left to right) after an empty column: for runs that cut
    across a steep line, a gap across the text (two lines side by side)."""
    columns = np.rint(boxes[:, 0] / ANCHOR_WIDTH).astype(np.int64)
    return np.flatnonzero(np.diff(columns) > 1) + 1


def _fit_part(boxes: np.ndarray, members: list[np.ndarray], scores: np.ndarray) -> list[OrientedLine]:
    """A chain part fitted on its own slope; one that cuts across a steep line is first cut at
    its empty columns."""
    slope = chain_slope(boxes)
    cuts = _across_gaps(boxes) if np.isinf(slope) else np.empty(0, np.int64)
    out = []
    for part in np.split(np.arange(len(boxes)), cuts):
        part_slope = slope if len(cuts) == 0 else chain_slope(boxes[part])
        out.append(fit_line(boxes[part], [members[k] for k in part], part_slope, scores))
    return out


def chain_lines(runs: Runs, scores: np.ndarray, cfg: LineConfig, ocfg: OrientedConfig) -> list[OrientedLine]:
    """Steps 3-4: runs linked into chains, chains cut where they turn (:func:`_turns`), each
    part fitted (:func:`_fit_part`)."""
    if len(runs) == 0:
        return []
    successor = link_proposals(runs.boxes, runs.scores, _link_config(cfg, ocfg))
    out = []
    for chain in chains(successor):
        for part in np.split(chain, _turns(runs.boxes[chain], ocfg)):
            out += _fit_part(runs.boxes[part], [runs.members[k] for k in part], scores)
    return out


def _keep(line: OrientedLine, cfg: LineConfig) -> bool:
    """Step 6's filters on a fitted line."""
    return (len(line.indices) >= cfg.min_proposals and line.height > 0 and line.length / line.height >= cfg.min_ratio
            and line.score >= cfg.min_score and line.length >= cfg.min_width)


def _scores(proposals: Proposals, cfg: LineConfig) -> np.ndarray:
    return normalize_scores(proposals.scores) if cfg.normalize_scores else proposals.scores


def build_oriented(proposals: Proposals, cfg: LineConfig | None = None,
                   ocfg: OrientedConfig | None = None) -> list[OrientedLine]:
    """Steps 1-6: the kept lines, best score first."""
    cfg, ocfg = cfg or LineConfig(), ocfg or OrientedConfig()
    if len(proposals) == 0:
        return []
    scores = _scores(proposals, cfg)
    runs = column_runs(proposals.boxes, scores, ocfg)
    lines = [line for line in join_lines(chain_lines(runs, scores, cfg, ocfg), scores, ocfg) if _keep(line, cfg)]
    if not lines:
        return []
    keep = nms_quads([line.text_quad() for line in lines], np.array([line.score for line in lines]),
                     cfg.nms_threshold)
    return [lines[k] for k in keep]


def oriented_words(line: OrientedLine, scores: np.ndarray, gap: float) -> list[OrientedLine]:
    """A line cut where the space between its runs along the axis is more than ``gap`` x its
    height, in reading order along the axis. Words keep the line's axis and across extent; the
    first and last keep the line's ends, inner ends are their runs' extremes."""
    s, _ = line.frame.project(line.shapes)  # (K, 4): each run's corners along the axis
    starts, ends = s.min(axis=1), s.max(axis=1)
    order = np.argsort(starts, kind="stable")
    reach = np.maximum.accumulate(ends[order])
    cuts = np.flatnonzero(starts[order][1:] - reach[:-1] > gap * line.height) + 1
    if len(cuts) == 0:
        return [line]
    parts = np.split(order, cuts)
    words = []
    for k, part in enumerate(parts):
        members = [line.members[i] for i in part]
        word_start = line.start if k == 0 else float(starts[part].min())
        word_end = line.end if k == len(parts) - 1 else float(ends[part].max())
        words.append(replace(line, boxes=line.boxes[part], members=members, shapes=line.shapes[part],
                             start=word_start, end=word_end, score=float(scores[np.concatenate(members)].mean())))
    return words


def connect_oriented(proposals: Proposals, cfg: LineConfig | None = None,
                     ocfg: OrientedConfig | None = None) -> list[Grouped]:
    """Proposals to lines with their words, as :func:`.lines.connect_grouped` gives them:
    ``(quad, score, [(word quad, word score), ...])`` per line, best line first, its words in
    reading order (quads as in the module notes)."""
    cfg, ocfg = cfg or LineConfig(), ocfg or OrientedConfig()
    lines = build_oriented(proposals, cfg, ocfg)
    scores = _scores(proposals, cfg)
    out = []
    for line in lines:
        words = oriented_words(line, scores, cfg.word_gap)
        quad = line.quad(ocfg.vertical_angle)
        if line.frame.along[1] < 0 and not np.allclose(quad, line.text_quad()):
            words = words[::-1]  # a vertical line reads downwards
        out.append((quad, line.score,
                    [(word.quad(ocfg.vertical_angle), word.score) for word in words]))
    return out


def grow_across(quad: np.ndarray, margin: float) -> np.ndarray:
    """A line quad grown by ``margin`` times its text height on both sides of its text: as
    :func:`.lines.grow_vertically` for a quad read along its first edge, and across its long
    sides for one that :mod:`scenetext.crop` reads as vertical text (more than
    ``VERTICAL_RATIO`` times taller than wide)."""
    width, height = quad_size(quad)
    if height <= VERTICAL_RATIO * width:
        return grow_vertically(quad, margin)
    return np.roll(grow_vertically(np.roll(np.asarray(quad, np.float32), -1, axis=0), margin), 1, axis=0)
