"""Evaluation protocols: word recognition, ICDAR 2015 IoU detection, ICDAR 2013 DetEval and
ICDAR 2015 end-to-end. Pure numpy + shapely; each protocol lives in its own module.

Conventions: a polygon is an array-like of ``(x, y)`` points; per-image inputs are parallel lists
(``gt_ignore[i]`` True for a ``###`` region); data-set functions take one such list per image and
sum the counts over images before computing precision, recall and hmean.
"""

from scenetext.evaluation.deteval import (
    DetEvalScore,
    evaluate_deteval,
    evaluate_image_deteval,
)
from scenetext.evaluation.e2e import (
    E2EScore,
    evaluate_e2e,
    evaluate_image_e2e,
    transcription_match,
)
from scenetext.evaluation.iou import (
    DetectionScore,
    ImageDetEval,
    evaluate_image_iou,
    evaluate_iou,
    polygon,
)
from scenetext.evaluation.text import (
    RecognitionScore,
    edit_distance,
    normalize_standard,
    score_recognition,
)

__all__ = [
    "DetEvalScore",
    "DetectionScore",
    "E2EScore",
    "ImageDetEval",
    "RecognitionScore",
    "edit_distance",
    "evaluate_deteval",
    "evaluate_e2e",
    "evaluate_image_deteval",
    "evaluate_image_e2e",
    "evaluate_image_iou",
    "evaluate_iou",
    "normalize_standard",
    "polygon",
    "score_recognition",
    "transcription_match",
]
