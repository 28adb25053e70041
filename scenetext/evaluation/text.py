"""Word-recognition metrics.

The standard protocol: lower-case prediction and ground truth, delete everything outside
``0-9a-z`` and count exact matches; accuracy = correct / all samples. Two companions are reported
with it:

* case-sensitive accuracy: the same comparison with upper-case letters kept (``0-9A-Za-z``);
* ``1 - NED``: one minus the mean normalised edit distance ``ED / max(len(gt), len(pred))`` on
  the raw strings (case and punctuation included); a pair of empty strings has distance 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_NOT_ALNUM_LOWER = re.compile(r"[^0-9a-z]")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")


def normalize_standard(text: str) -> str:
    """Lower-case ``text`` and keep only the characters ``0-9a-z``."""
    return _NOT_ALNUM_LOWER.sub("", text.lower())


def normalize_case_sensitive(text: str) -> str:
    """Keep only the characters ``0-9A-Za-z`` of ``text``, case unchanged."""
    return _NOT_ALNUM.sub("", text)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (unit-cost insertions, deletions and substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(
                    previous[j] + 1,  # delete char_a
                    current[j - 1] + 1,  # insert char_b
                    previous[j - 1] + (char_a != char_b),  # substitute
                )
            )
        previous = current
    return previous[-1]


def normalized_edit_distance(pred: str, gt: str) -> float:
    """``ED(pred, gt) / max(len(pred), len(gt))``; 0 when both strings are empty."""
    longest = max(len(pred), len(gt))
    return edit_distance(pred, gt) / longest if longest else 0.0


@dataclass
class RecognitionScore:
    """Running totals of the recognition metrics; all rates are 0 when ``n == 0``."""

    n: int = 0
    correct: int = 0
    correct_case_sensitive: int = 0
    ned_sum: float = 0.0

    def add(self, pred: str, gt: str) -> None:
        """Score one prediction against its ground truth."""
        self.n += 1
        self.correct += normalize_standard(pred) == normalize_standard(gt)
        self.correct_case_sensitive += (
            normalize_case_sensitive(pred) == normalize_case_sensitive(gt)
        )
        self.ned_sum += normalized_edit_distance(pred, gt)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def accuracy_case_sensitive(self) -> float:
        return self.correct_case_sensitive / self.n if self.n else 0.0

    @property
    def one_minus_ned(self) -> float:
        return 1.0 - self.ned_sum / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "accuracy_case_sensitive": self.accuracy_case_sensitive,
            "one_minus_ned": self.one_minus_ned,
        }


def score_recognition(preds: Iterable[str], gts: Iterable[str]) -> RecognitionScore:
    """Score predictions against ground truths given in the same order (lengths must agree)."""
    score = RecognitionScore()
    for pred, gt in zip(preds, gts, strict=True):
        score.add(pred, gt)
    return score
