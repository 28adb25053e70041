"""Run a Detector over a detection set and score it (ICDAR 2015 IoU or ICDAR 2013 DetEval)."""

from __future__ import annotations

import time
from pathlib import Path

from ..data.formats import DetSample, read_det_set
from ..evaluation.deteval import evaluate_deteval
from ..evaluation.iou import evaluate_iou
from ..imageio import load_image

PROTOCOLS = {"iou": evaluate_iou, "deteval": evaluate_deteval}


def evaluate_samples(detector, samples: list[DetSample], protocol: str = "iou", level: str = "line") -> dict:
    """Scores summed over the set plus `n_images` and `ms_per_image` (detection time only)."""
    gt, ignore, found = [], [], []
    seconds = 0.0
    for sample in samples:
        image = load_image(sample.image)
        start = time.perf_counter()
        detections = detector.detect(image, level=level)
        seconds += time.perf_counter() - start
        gt.append([r.points for r in sample.regions])
        ignore.append([r.ignore for r in sample.regions])
        found.append([d.quad for d in detections])
    score = PROTOCOLS[protocol](gt, ignore, found)
    n = len(samples)
    return {**score.to_dict(), "n_images": n, "ms_per_image": 1000.0 * seconds / max(1, n)}


def evaluate_folder(detector, folder: str | Path, protocol: str = "iou", level: str = "line",
                    limit: int | None = None) -> dict:
    return evaluate_samples(detector, read_det_set(folder)[:limit], protocol, level)
