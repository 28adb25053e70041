"""ICDAR 2015 end-to-end protocol (generic, no lexicon).

Detections are matched to ground truths exactly as in the IoU protocol (``iou.py``); ground
truths transcribed ``###`` are the ignore regions. A matched pair is *correct* when the
upper-cased texts are equal, where the ground truth may lose one leading and/or one trailing
character from ``!?.:,*"()·[]/'``. Over a data set the counts are summed:
e2e R = correct / care GT, e2e P = correct / care detections, e2e H = 2PR / (P + R).
Detection P / R / H from the same matching are reported alongside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from numpy.typing import ArrayLike

from scenetext.evaluation.iou import (
    DONT_CARE_THRESHOLD,
    IOU_THRESHOLD,
    DetectionScore,
    evaluate_image_iou,
    harmonic_mean,
    ratio,
)

IGNORE_TEXT = "###"
SPECIAL_CHARACTERS = "!?.:,*\"()·[]/'"


def transcription_match(gt: str, pred: str) -> bool:
    """Case-insensitive equality; the ground truth may drop one leading and/or one trailing
    character from ``SPECIAL_CHARACTERS``."""
    gt, pred = gt.upper(), pred.upper()
    candidates = {gt}
    if gt[:1] and gt[0] in SPECIAL_CHARACTERS:
        candidates.add(gt[1:])
    if gt[-1:] and gt[-1] in SPECIAL_CHARACTERS:
        candidates |= {c[:-1] for c in candidates}
    return pred in candidates


@dataclass
class E2EScore(DetectionScore):
    """Detection counts plus the number of matched pairs whose texts agree."""

    n_correct: int = 0

    @property
    def e2e_precision(self) -> float:
        return ratio(self.n_correct, self.n_det_care)

    @property
    def e2e_recall(self) -> float:
        return ratio(self.n_correct, self.n_gt_care)

    @property
    def e2e_hmean(self) -> float:
        return harmonic_mean(self.e2e_precision, self.e2e_recall)

    def to_dict(self) -> dict[str, float]:
        return {
            **super().to_dict(),
            "e2e_precision": self.e2e_precision,
            "e2e_recall": self.e2e_recall,
            "e2e_hmean": self.e2e_hmean,
        }


def evaluate_image_e2e(
    gt_polys: Sequence[ArrayLike],
    gt_texts: Sequence[str],
    det_polys: Sequence[ArrayLike],
    det_texts: Sequence[str],
    iou_thresh: float = IOU_THRESHOLD,
    dontcare_thresh: float = DONT_CARE_THRESHOLD,
) -> E2EScore:
    """End-to-end counts for one image; ``gt_texts`` and ``det_texts`` are parallel to the
    polygons, and a ground truth is ignored when its text is ``###``."""
    if len(gt_polys) != len(gt_texts) or len(det_polys) != len(det_texts):
        raise ValueError("every polygon needs a text")
    gt_ignore = [text == IGNORE_TEXT for text in gt_texts]
    image = evaluate_image_iou(gt_polys, gt_ignore, det_polys, iou_thresh, dontcare_thresh)
    n_correct = sum(transcription_match(gt_texts[g], det_texts[d]) for g, d in image.matches)
    return E2EScore(image.n_gt_care, image.n_det_care, len(image.matches), n_correct)


def evaluate_e2e(
    gt_polys: Sequence[Sequence[ArrayLike]],
    gt_texts: Sequence[Sequence[str]],
    det_polys: Sequence[Sequence[ArrayLike]],
    det_texts: Sequence[Sequence[str]],
    iou_thresh: float = IOU_THRESHOLD,
    dontcare_thresh: float = DONT_CARE_THRESHOLD,
) -> E2EScore:
    """End-to-end evaluation of a data set, one entry per image in each argument; counts are
    summed over images before the rates are computed."""
    if not len(gt_polys) == len(gt_texts) == len(det_polys) == len(det_texts):
        raise ValueError("one entry per image is needed in every argument")
    total = E2EScore()
    for image_args in zip(gt_polys, gt_texts, det_polys, det_texts):
        total += evaluate_image_e2e(*image_args, iou_thresh, dontcare_thresh)
    return total
