"""Run a Recognizer over a labelled crop folder and score it by the standard protocol."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..data.formats import read_rec_set
from ..evaluation.text import RecognitionScore


@dataclass
class RecEvalResult:
    name: str
    score: RecognitionScore
    seconds: float
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (image, truth, prediction)

    @property
    def crops_per_second(self) -> float:
        return self.score.n / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**self.score.to_dict(), "crops_per_second": round(self.crops_per_second, 1)}


def load_crops(folder: str | Path, limit: int | None = None):
    """Images, texts and names of a labelled crop folder. An unreadable crop stays in the set as
    a blank image (so it counts as a misread) and is reported on stderr."""
    import sys

    samples = read_rec_set(folder)[:limit]
    images, texts, names = [], [], []
    for s in samples:
        bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"{s.image}: unreadable image, counted as a misread", file=sys.stderr)
            bgr = np.zeros((32, 32, 3), np.uint8)
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        texts.append(s.text)
        names.append(str(s.image))
    return images, texts, names


def evaluate_crops(recognizer, images, texts, names=None, name: str = "") -> RecEvalResult:
    t0 = time.perf_counter()
    preds = [d.text for d in recognizer.recognize(images)]
    seconds = time.perf_counter() - t0
    score = RecognitionScore()
    errors = []
    for i, (p, g) in enumerate(zip(preds, texts)):
        score.add(p, g)
        if p != g:
            errors.append((names[i] if names else str(i), g, p))
    return RecEvalResult(name, score, seconds, errors)


def evaluate_folder(recognizer, folder: str | Path, limit: int | None = None) -> RecEvalResult:
    images, texts, names = load_crops(folder, limit)
    return evaluate_crops(recognizer, images, texts, names, name=Path(folder).name)
