"""CTPN training targets for one image.

Each ground-truth region (a polygon of any slant) is cut into 16-px columns on the anchor grid.
A column's vertical extent is the ``y`` range of the polygon's intersection with that column
strip (not of the polygon's bounding box), so the columns of a slanted line follow the slant.
An anchor is compared with the column box of its own column (same x range), so the IoU is the
vertical overlap over the vertical union.

Labelling (thresholds in :class:`TargetConfig`):

* an anchor is **matched** to a column when their IoU is >= ``positive_iou`` (0.5), or when it is
  the column's best anchor. The paper's 0.7 gives about one positive per column; 0.5 gives two or
  three for large text and keeps small text learnable, as in most re-implementations;
* a matched anchor is **positive** when the region covers at least ``min_coverage`` of its
  column's width; the ragged end columns (less covered) are "don't care" for the class, since
  either answer is defensible there, but still get regression targets;
* an anchor with IoU >= ``negative_iou`` (0.3) to a column but not matched is "don't care": it
  is neither clearly text nor clearly background. Below 0.3 it is **negative**;
* anchors over ``###`` regions, and over columns lower than ``min_height`` px, are "don't care"
  when their IoU with such a column is >= ``negative_iou`` or more than ``ignore_ioa`` of the
  anchor lies inside it. Positives of other regions stay positive.

Matched anchors get vertical targets ``(v_c, v_h)``; matched anchors whose centre lies within
``side_distance`` px of a region end get the side target of the nearer end, but only for ends
inside the image (a region cut by a crop has no true end at the cut). Finally positives and
negatives are sampled (``batch_size`` anchors, at most ``positive_fraction`` positive); the mask
of all background anchors is kept too, for the loss's optional hard-negative mining.
Degenerate regions (no area inside the image) give no columns, so no target is ever NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from ..data.formats import Region
from ..detection.anchors import (
    ANCHOR_HEIGHTS,
    STRIDE,
    encode_side,
    encode_vertical,
    feature_size,
    make_anchors,
)
from ..evaluation.iou import polygon

IGNORE, NEGATIVE, POSITIVE = -1, 0, 1


@dataclass
class TargetConfig:
    positive_iou: float = 0.5
    negative_iou: float = 0.3
    ignore_ioa: float = 0.5
    min_coverage: float = 0.5
    min_height: float = 4.0
    side_distance: float = 32.0
    batch_size: int = 256
    positive_fraction: float = 0.5


@dataclass
class Columns:
    """Column slices of regions, one entry per (region, column)."""

    region: np.ndarray  # (G,) int: index into the region list
    col: np.ndarray  # (G,) int: feature column
    y0: np.ndarray  # (G,) float32
    y1: np.ndarray  # (G,) float32
    coverage: np.ndarray  # (G,) float32: share of the column's width covered by the region


@dataclass
class Targets:
    """Targets on a ``(h, w, k)`` anchor grid."""

    labels: np.ndarray  # int8: 1 text, 0 background, -1 not sampled or don't care
    vertical: np.ndarray  # (h, w, k, 2) float32 (v_c, v_h); valid where vertical_mask
    vertical_mask: np.ndarray  # bool
    side: np.ndarray  # (h, w, k) float32 side offsets; valid where side_mask
    side_mask: np.ndarray  # bool
    negatives: np.ndarray | None = None  # bool: every background anchor before sampling (hard-negative mining)


def slice_region(points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a polygon, clipped to the image, into 16-px column strips.

    Returns ``cols`` ``(n,)`` and ``bounds`` ``(n, 4)`` ``(x0, y0, x1, y1)`` of the polygon inside
    each strip; strips where it has no area are dropped.
    """
    shape = polygon(points).intersection(shapely.box(0, 0, width, height))
    if shape.is_empty or shape.area <= 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    x0, _, x1, _ = shape.bounds
    cols = np.arange(int(x0 // STRIDE), int(np.ceil(x1 / STRIDE)))
    strips = shapely.box(cols * STRIDE, 0, (cols + 1) * STRIDE, height)
    bounds = shapely.bounds(shapely.intersection(shape, strips))
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(bounds).all(axis=1) & (bounds[:, 2] > bounds[:, 0]) & (bounds[:, 3] > bounds[:, 1])
    return cols[keep], bounds[keep].astype(np.float32)


def slice_regions(regions: list[Region], width: int, height: int) -> Columns:
    """:func:`slice_region` over all regions."""
    parts = [slice_region(r.points, width, height) for r in regions]
    region = np.repeat(np.arange(len(parts)), [len(c) for c, _ in parts])
    cols = np.concatenate([c for c, _ in parts] + [np.zeros(0, np.int64)])
    bounds = np.concatenate([b for _, b in parts] + [np.zeros((0, 4), np.float32)])
    coverage = (bounds[:, 2] - bounds[:, 0]) / STRIDE
    return Columns(region, cols, bounds[:, 1], bounds[:, 3], coverage)


def _column_overlaps(columns: Columns, anchors: np.ndarray):
    """Vertical IoU and intersection-over-anchor of every column box with every anchor of its
    column. Returns ``(flat anchor index, iou, ioa)``, each ``(G, h, k)``."""
    fh, fw, k = anchors.shape[:3]
    ay0, ay1 = anchors[:, 0, :, 1], anchors[:, 0, :, 3]  # (h, k): the same in every column
    y0, y1 = columns.y0[:, None, None], columns.y1[:, None, None]
    inter = np.clip(np.minimum(ay1, y1) - np.maximum(ay0, y0), 0, None)
    union = (ay1 - ay0) + (y1 - y0) - inter
    iou = inter / union
    ioa = inter / (ay1 - ay0)
    rows, ks = np.meshgrid(np.arange(fh), np.arange(k), indexing="ij")
    flat = (rows[None] * fw + columns.col[:, None, None]) * k + ks[None]
    return flat, iou, ioa


def _best_per_anchor(flat: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For entries ``(anchor flat, value)``: the distinct anchors and, for each, the position of
    its entry with the largest value."""
    order = np.lexsort((values, flat))
    ranked = flat[order]
    last = np.ones(len(order), bool)
    last[:-1] = ranked[1:] != ranked[:-1]
    chosen = order[last]
    return flat[chosen], chosen


def _match(columns: Columns, flat: np.ndarray, iou: np.ndarray, cfg: TargetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Anchors matched to a column: ``(flat anchor indices, column indices)``."""
    g = np.broadcast_to(np.arange(len(columns.col))[:, None, None], iou.shape)
    strong = iou >= cfg.positive_iou
    anchor, entry = _best_per_anchor(flat[strong], iou[strong])
    column = g[strong][entry]
    best = iou.reshape(len(iou), -1).argmax(axis=1)  # each column's best anchor
    forced = flat.reshape(len(flat), -1)[np.arange(len(flat)), best]
    anchor = np.concatenate([anchor, forced])
    column = np.concatenate([column, np.arange(len(columns.col))])
    keep = np.unique(anchor[::-1], return_index=True)[1]  # a forced match overrides
    return anchor[::-1][keep], column[::-1][keep]


def label_anchors(regions: list[Region], image_size: tuple[int, int], cfg: TargetConfig,
                  heights=ANCHOR_HEIGHTS) -> Targets:
    """Unsampled targets: every anchor labelled (see the module docstring)."""
    height, width = image_size
    anchors = make_anchors(*feature_size(height, width), tuple(heights))
    n = anchors.shape[0] * anchors.shape[1] * anchors.shape[2]
    labels = np.zeros(n, np.int8)
    vertical = np.zeros((n, 2), np.float32)
    side = np.zeros(n, np.float32)
    vertical_mask = np.zeros(n, bool)
    side_mask = np.zeros(n, bool)

    columns = slice_regions(regions, width, height)
    ignored = np.array([r.ignore for r in regions], bool)[columns.region]
    care = ~ignored & (columns.y1 - columns.y0 >= cfg.min_height)
    flat, iou, ioa = _column_overlaps(columns, anchors)

    dont_care = (iou >= cfg.negative_iou) | ((ioa > cfg.ignore_ioa) & ~care[:, None, None])
    labels[flat[dont_care]] = IGNORE
    target = _subset(columns, care)
    if len(target.col):
        anchor, column = _match(target, flat[care], iou[care], cfg)
        full = target.coverage[column] >= cfg.min_coverage
        labels[anchor] = np.where(full, POSITIVE, IGNORE)
        boxes = anchors.reshape(-1, 4)[anchor]
        cy_a, h_a = (boxes[:, 1] + boxes[:, 3]) / 2, boxes[:, 3] - boxes[:, 1]
        cy, h = (target.y0[column] + target.y1[column]) / 2, target.y1[column] - target.y0[column]
        vertical[anchor] = encode_vertical(cy_a, h_a, cy, h)
        vertical_mask[anchor] = True
        cx_a = (boxes[:, 0] + boxes[:, 2]) / 2
        ends = _region_ends(regions, width)[target.region[column]]
        x_side, has_side = _nearest_end(cx_a, ends, cfg.side_distance)
        side[anchor[has_side]] = encode_side(cx_a[has_side], x_side[has_side])
        side_mask[anchor[has_side]] = True

    shape = anchors.shape[:3]
    return Targets(labels.reshape(shape), vertical.reshape(*shape, 2), vertical_mask.reshape(shape),
                   side.reshape(shape), side_mask.reshape(shape))


def _subset(columns: Columns, keep: np.ndarray) -> Columns:
    return Columns(columns.region[keep], columns.col[keep], columns.y0[keep], columns.y1[keep], columns.coverage[keep])


def _region_ends(regions: list[Region], width: int) -> np.ndarray:
    """``(n, 2)`` x of each region's left and right end; NaN for an end outside the image."""
    ends = np.array([[r.points[:, 0].min(), r.points[:, 0].max()] for r in regions], np.float32).reshape(-1, 2)
    inside = (ends >= 0) & (ends <= width)
    return np.where(inside, ends, np.nan)


def _nearest_end(cx: np.ndarray, ends: np.ndarray, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """The region end nearer each anchor centre, and whether it is within ``max_distance``."""
    distance = np.abs(ends - cx[:, None])
    distance = np.where(np.isnan(distance), np.inf, distance)
    nearer = distance.argmin(axis=1)
    rows = np.arange(len(cx))
    return ends[rows, nearer], distance[rows, nearer] <= max_distance


def sample_labels(labels: np.ndarray, cfg: TargetConfig, rng: np.random.Generator) -> np.ndarray:
    """Keep at most ``batch_size * positive_fraction`` positives and fill up to ``batch_size``
    with negatives; every other anchor becomes -1."""
    flat = labels.reshape(-1)
    positives = np.flatnonzero(flat == POSITIVE)
    negatives = np.flatnonzero(flat == NEGATIVE)
    n_pos = min(len(positives), int(cfg.batch_size * cfg.positive_fraction))
    n_neg = min(len(negatives), cfg.batch_size - n_pos)
    out = np.full_like(flat, IGNORE)
    out[rng.choice(positives, n_pos, replace=False)] = POSITIVE
    out[rng.choice(negatives, n_neg, replace=False)] = NEGATIVE
    return out.reshape(labels.shape)


def build_targets(regions: list[Region], image_size: tuple[int, int], cfg: TargetConfig | None = None,
                  rng: np.random.Generator | None = None, heights=ANCHOR_HEIGHTS) -> Targets:
    """Sampled training targets for one image of ``image_size = (height, width)``."""
    cfg = cfg or TargetConfig()
    rng = rng if rng is not None else np.random.default_rng(0)
    targets = label_anchors(regions, image_size, cfg, heights)
    targets.negatives = targets.labels == NEGATIVE
    targets.labels = sample_labels(targets.labels, cfg, rng)
    return targets
