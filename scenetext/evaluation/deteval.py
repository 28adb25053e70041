"""ICDAR 2013 DetEval protocol (Wolf & Jolion), suited to line-level output against word boxes.

Every polygon is replaced by its axis-aligned bounding rectangle. For a ground truth ``g`` and a
detection ``d``: ``recall(g, d) = |g ∩ d| / |g|`` and ``precision(g, d) = |g ∩ d| / |d|``, with
``tr = 0.8`` and ``tp = 0.4``. A pair *satisfies both thresholds* when recall >= tr and
precision >= tp. Matching runs in three passes, each box used at most once:

1. one-to-one: ``g`` and ``d`` satisfy both thresholds, each has exactly that one partner
   satisfying both, and their centres are close, ``2 |c_g - c_d| / (diag_g + diag_d) < 1``:
   recall +1, precision +1;
2. one-to-many (a ground truth split over several detections): the unused detections with
   ``precision(g, d) >= tp`` have a recall sum >= tr: recall +0.8 and precision +0.8 per
   detection (+1 and +1 when a single detection qualifies);
3. many-to-one (a detection over several ground truths, e.g. a CTPN line over words): the unused
   ground truths with ``recall(g, d) >= tr`` have a precision sum >= tp: recall +1 per ground
   truth, precision +1.

As in the official script, pass 2 only considers a ground truth that overlaps at least two
detections and pass 3 only a detection that overlaps at least two ground truths; otherwise a
single word under a line detection would claim the whole line in pass 2. Sums are rounded to 4
decimals before the comparison, as there. Areas are continuous (no ``+1`` pixel convention).

``###`` regions: a detection whose intersection with one of them covers more than 50 % of its
own area is don't-care; don't-care detections and ignore ground truths take no part in the
matching or the counts. R = sum of recall credit / care GT, P = sum of precision credit / care
detections, each summed over the data set; H = 2PR / (P + R).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from scenetext.evaluation.iou import DONT_CARE_THRESHOLD, SummedScore, divide_or_zero

AREA_RECALL_THRESHOLD = 0.8  # tr
AREA_PRECISION_THRESHOLD = 0.4  # tp
SPLIT_CREDIT = 0.8  # one-to-many credit per part
CENTRE_DISTANCE_THRESHOLD = 1.0


@dataclass
class DetEvalScore(SummedScore):
    """DetEval credits and care counts, for one image or summed over a data set."""

    recall_credit: float = 0.0
    precision_credit: float = 0.0
    n_gt_care: int = 0
    n_det_care: int = 0

    def credits(self) -> tuple[float, float]:
        return self.precision_credit, self.recall_credit


def bounding_boxes(polys: Sequence[ArrayLike]) -> np.ndarray:
    """``(n, 4)`` array of ``(xmin, ymin, xmax, ymax)`` rectangles around the polygons."""
    boxes = np.zeros((len(polys), 4))
    for i, points in enumerate(polys):
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        if len(pts):  # no points: an empty box at the origin
            boxes[i] = (*pts.min(axis=0), *pts.max(axis=0))
    return boxes


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)


def _intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` matrix of rectangle intersection areas."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.prod(np.clip(high - low, 0, None), axis=2)


def _centres_close(gt: np.ndarray, det: np.ndarray) -> np.ndarray:
    """``2 |c_g - c_d| / (diag_g + diag_d) < 1`` for every pair (False for two empty boxes)."""
    centre_g, centre_d = (gt[:, :2] + gt[:, 2:]) / 2, (det[:, :2] + det[:, 2:]) / 2
    distance = np.linalg.norm(centre_g[:, None] - centre_d[None, :], axis=2)
    diag_g = np.linalg.norm(gt[:, 2:] - gt[:, :2], axis=1)
    diag_d = np.linalg.norm(det[:, 2:] - det[:, :2], axis=1)
    diag_sum = diag_g[:, None] + diag_d[None, :]
    return (diag_sum > 0) & (2 * distance < CENTRE_DISTANCE_THRESHOLD * diag_sum)


def _match(
    recall: np.ndarray, precision: np.ndarray, close: np.ndarray, tr: float, tp: float
) -> tuple[float, float]:
    """The three DetEval passes over care boxes; returns (recall credit, precision credit)."""
    n_gt, n_det = recall.shape
    both = (recall >= tr) & (precision >= tp)
    overlaps = recall > 0

    # 1. one-to-one: a pair that is each side's only partner cannot clash with another pair.
    one_to_one = both & (both.sum(axis=1) == 1)[:, None] & (both.sum(axis=0) == 1)[None, :] & close
    gt_used, det_used = one_to_one.any(axis=1), one_to_one.any(axis=0)
    recall_credit = precision_credit = float(one_to_one.sum())

    # 2. one-to-many: one ground truth split over several detections.
    for g in range(n_gt):
        if gt_used[g] or overlaps[g].sum() < 2:
            continue
        parts = np.flatnonzero(~det_used & (precision[g] >= tp))
        if parts.size and round(recall[g, parts].sum(), 4) >= tr:
            gt_used[g], det_used[parts] = True, True
            credit = 1.0 if parts.size == 1 else SPLIT_CREDIT
            recall_credit += credit
            precision_credit += credit * parts.size

    # 3. many-to-one: one detection over several ground truths.
    for d in range(n_det):
        if det_used[d] or overlaps[:, d].sum() < 2:
            continue
        covered = np.flatnonzero(~gt_used & (recall[:, d] >= tr))
        if covered.size and round(precision[covered, d].sum(), 4) >= tp:
            det_used[d], gt_used[covered] = True, True
            recall_credit += covered.size
            precision_credit += 1.0
    return recall_credit, precision_credit


def evaluate_image_deteval(
    gt_polys: Sequence[ArrayLike],
    gt_ignore: Sequence[bool],
    det_polys: Sequence[ArrayLike],
    tr: float = AREA_RECALL_THRESHOLD,
    tp: float = AREA_PRECISION_THRESHOLD,
    dontcare_thresh: float = DONT_CARE_THRESHOLD,
) -> DetEvalScore:
    """DetEval credits and care counts for one image (same inputs as ``evaluate_image_iou``)."""
    if len(gt_polys) != len(gt_ignore):
        raise ValueError("gt_polys and gt_ignore must have the same length")
    gt, det = bounding_boxes(gt_polys), bounding_boxes(det_polys)
    ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    covered = divide_or_zero(_intersection_areas(det, gt[ignore]), _areas(det)[:, None])
    gt, det = gt[~ignore], det[~(covered > dontcare_thresh).any(axis=1)]

    inter = _intersection_areas(gt, det)
    recall = divide_or_zero(inter, _areas(gt)[:, None])
    precision = divide_or_zero(inter, _areas(det)[None, :])
    recall_credit, precision_credit = _match(recall, precision, _centres_close(gt, det), tr, tp)
    return DetEvalScore(recall_credit, precision_credit, len(gt), len(det))


def evaluate_deteval(
    gt_polys: Sequence[Sequence[ArrayLike]],
    gt_ignore: Sequence[Sequence[bool]],
    det_polys: Sequence[Sequence[ArrayLike]],
    tr: float = AREA_RECALL_THRESHOLD,
    tp: float = AREA_PRECISION_THRESHOLD,
    dontcare_thresh: float = DONT_CARE_THRESHOLD,
) -> DetEvalScore:
    """DetEval over a data set, one entry per image in each argument; credits and counts are
    summed over images before P, R and H are computed."""
    if not len(gt_polys) == len(gt_ignore) == len(det_polys):
        raise ValueError("one entry per image is needed in gt_polys, gt_ignore and det_polys")
    total = DetEvalScore()
    for image_gt, image_ignore, image_det in zip(gt_polys, gt_ignore, det_polys):
        total += evaluate_image_deteval(image_gt, image_ignore, image_det, tr, tp, dontcare_thresh)
    return total
