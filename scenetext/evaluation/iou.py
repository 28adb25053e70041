"""ICDAR 2015 detection protocol (polygon IoU).

Per image:

1. a detection is *don't-care* when its intersection with one ``###`` (ignore) ground-truth
   region covers more than 50 % of the detection's own area. As in the official script, the
   test is made region by region (the first region over the threshold decides), not on the sum
   of the intersections with all ignore regions;
2. polygon IoU between every care ground truth and every care detection;
3. greedy one-to-one matching: ground truths in order, and for each the first unused detection,
   in order, with IoU strictly above 0.5;
4. counts of care ground truths, care detections and matches.

Over a data set the counts are summed (never averaged per image):
R = matches / care GT, P = matches / care detections, H = 2PR / (P + R).

Input conventions, shared by the whole ``scenetext.evaluation`` package: a polygon is an
array-like of ``(x, y)`` points, shape ``(N, 2)`` with ``N >= 3`` (a flat ``(2N,)`` sequence is
accepted too); ``gt_ignore[i]`` is True when ground truth ``i`` is a ``###`` region. Per-image
lists are parallel lists; data-set functions take one such list per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import shapely
from numpy.typing import ArrayLike
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

IOU_THRESHOLD = 0.5
DONT_CARE_THRESHOLD = 0.5


def polygon(points: ArrayLike) -> Polygon | MultiPolygon:
    """A valid shapely polygon for ``points``.

    Self-intersecting outlines are repaired with ``shapely.make_valid`` (a bow-tie becomes a
    two-part MultiPolygon). Degenerate input (fewer than 3 points, collinear points, non-finite
    coordinates) gives an empty polygon of area 0 instead of an error.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return Polygon()
    return _polygonal_part(shapely.make_valid(Polygon(pts)))


def _polygonal_part(geometry: BaseGeometry) -> Polygon | MultiPolygon:
    """The area-bearing part of a valid geometry (drops the lines and points of a collection)."""
    if isinstance(geometry, (Polygon, MultiPolygon)):
        return geometry
    parts = [g for g in shapely.get_parts(geometry) if isinstance(g, (Polygon, MultiPolygon))]
    return shapely.union_all(parts) if parts else Polygon()


def polygons(polys: Sequence[ArrayLike]) -> np.ndarray:
    """A 1-D object array of valid polygons."""
    out = np.empty(len(polys), dtype=object)
    out[:] = [polygon(p) for p in polys]
    return out


def _intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` matrix of intersection areas between two polygon arrays."""
    return shapely.area(shapely.intersection(a[:, None], b[None, :])).reshape(len(a), len(b))


def divide_or_zero(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Element-wise ``num / den`` with 0 wherever ``den`` is 0."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.zeros(num.shape), where=den > 0)


def harmonic_mean(precision: float, recall: float) -> float:
    """``2PR / (P + R)``, 0 when ``P + R`` is 0."""
    total = precision + recall
    return 2 * precision * recall / total if total > 0 else 0.0


def inside_fractions(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))``: the share of each polygon of ``a`` lying inside each of ``b`` (1-D
    polygon arrays, see :func:`polygons`; 0 for an empty one)."""
    return divide_or_zero(_intersection_areas(a, b), shapely.area(a)[:, None])


def dont_care_detections(
    det: np.ndarray, ignore: np.ndarray, threshold: float = DONT_CARE_THRESHOLD
) -> np.ndarray:
    """Boolean mask: detections covered by one ignore region over more than ``threshold`` of
    their own area (region by region, as in the official script)."""
    if len(ignore) == 0:
        return np.zeros(len(det), dtype=bool)
    return (inside_fractions(det, ignore) > threshold).any(axis=1)


def iou_matrix(gt: np.ndarray, det: np.ndarray) -> np.ndarray:
    """``(len(gt), len(det))`` polygon IoU matrix (0 where the union is empty)."""
    inter = _intersection_areas(gt, det)
    union = shapely.area(gt)[:, None] + shapely.area(det)[None, :] - inter
    return divide_or_zero(inter, union)


def greedy_match(
    iou: np.ndarray, gt_ids: Sequence[int], det_ids: Sequence[int], threshold: float
) -> list[tuple[int, int]]:
    """Official-script matching: for each ground truth in order, the first detection still
    unused, in order, with ``iou > threshold``. ``iou`` is indexed by positions in
    ``gt_ids``/``det_ids``; the returned pairs hold the ids themselves."""
    matches = []
    used = np.zeros(len(det_ids), dtype=bool)
    for row, gt_id in enumerate(gt_ids):
        candidates = np.flatnonzero(~used & (iou[row] > threshold))
        if candidates.size:
            used[candidates[0]] = True
            matches.append((gt_id, det_ids[candidates[0]]))
    return matches


def ratio(num: float, den: float) -> float:
    """``num / den``, 0 when ``den`` is 0."""
    return num / den if den else 0.0


class SummedScore:
    """Base of the dataclass scores: counts that add up over images, and precision, recall and
    hmean from the credits given by :meth:`credits` (precision credit, recall credit)."""

    def credits(self) -> tuple[float, float]:
        raise NotImplementedError

    def __add__(self, other):
        return type(self)(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def precision(self) -> float:
        return ratio(self.credits()[0], self.n_det_care)

    @property
    def recall(self) -> float:
        return ratio(self.credits()[1], self.n_gt_care)

    @property
    def hmean(self) -> float:
        return harmonic_mean(self.precision, self.recall)

    def to_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "hmean": self.hmean,
                **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass
class DetectionScore(SummedScore):
    """Summed detection counts and the ICDAR 2015 precision / recall / hmean."""

    n_gt_care: int = 0
    n_det_care: int = 0
    n_matched: int = 0

    def credits(self) -> tuple[float, float]:
        return self.n_matched, self.n_matched


@dataclass
class ImageDetEval:
    """Result of one image: care counts and the matched ``(gt_index, det_index)`` pairs, with
    indices into the image's original ground-truth and detection lists."""

    n_gt_care: int
    n_det_care: int
    matches: list[tuple[int, int]] = field(default_factory=list)

    @property
    def score(self) -> DetectionScore:
        return DetectionScore(self.n_gt_care, self.n_det_care, len(self.matches))


def evaluate_image_iou(
    gt_polys: Sequence[ArrayLike],
    gt_ignore: Sequence[bool],
    det_polys: Sequence[ArrayLike],
    iou_thresh: float = IOU_THRESHOLD,
    dontcare_thresh: float = DONT_CARE_THRESHOLD,
) -> ImageDetEval:
    """Evaluate the detections of one image with the ICDAR 2015 IoU protocol.

    ``gt_polys`` and ``gt_ignore`` are parallel (``gt_ignore[i]`` True for a ``###`` region);
    ``det_polys`` are the detected polygons, in the order that the greedy matching follows.
    """
    if len(gt_polys) != len(gt_ignore):
        raise ValueError("gt_polys and gt_ignore must have the same length")
    gt, det = polygons(gt_polys), polygons(det_polys)
    ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    det_care = ~dont_care_detections(det, gt[ignore], dontcare_thresh)
    gt_ids, det_ids = np.flatnonzero(~ignore), np.flatnonzero(det_care)
    iou = iou_matrix(gt[gt_ids], det[det_ids])
    matches = greedy_match(iou, gt_ids.tolist(), det_ids.tolist(), iou_thresh)
    return ImageDetEval(len(gt_ids), len(det_ids), matches)


def evaluate_iou(
    gt_polys: Sequence[Sequence[ArrayLike]],
    gt_ignore: Sequence[Sequence[bool]],
    det_polys: Sequence[Sequence[ArrayLike]],
    iou_thresh: float = IOU_THRESHOLD,
    dontcare_thresh: float = DONT_CARE_THRESHOLD,
) -> DetectionScore:
    """Evaluate a data set: one entry per image in each argument (see ``evaluate_image_iou``).
    Counts are summed over images before P, R and H are computed."""
    if not len(gt_polys) == len(gt_ignore) == len(det_polys):
        raise ValueError("one entry per image is needed in gt_polys, gt_ignore and det_polys")
    total = DetectionScore()
    for image_gt, image_ignore, image_det in zip(gt_polys, gt_ignore, det_polys):
        image = evaluate_image_iou(image_gt, image_ignore, image_det, iou_thresh, dontcare_thresh)
        total += image.score
    return total
