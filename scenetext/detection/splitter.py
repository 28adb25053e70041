"""Learned word splitter: cuts the detector's boxes into words where a small network sees spaces.

CTPN proposals sit on a 16-px grid, so in small text a line's words share proposals and come out
as one box (``TOAST BOX``). The blank-column split of :mod:`.words` finds spaces that are empty
in the photo; blurred, tightly set signs have none. This module reads each box the way the
recogniser does (warped upright, height 32, the box widened by :data:`PAD_X` heights each side)
with a CRNN-shaped frame tagger (:class:`~scenetext.recognition.model.CRNN` with two output
classes) that gives, per 4-column frame, the probability that the frame is inside a word. Runs of
such frames are the words; their ends become the word boxes' ends, so loose box ends are trimmed
as well. A box in which no word survives is background the detector mistook for text and is
dropped (``drop_empty``).

It uses no recogniser and no language: it is trained on synthetic lines
(:mod:`scenetext.synth.render_lines`) and on the detector's own boxes on the training photos and
scenes, labelled from their ground-truth words (:mod:`.splitter_train`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..crop import LineCrop, crop_line, quad_size
from ..recognition.predictor import Recognizer
from ..recognition.preprocess import FRAME_STRIDE
from ..shipped import model_path, models_dir
from .words import true_runs

if TYPE_CHECKING:
    from ..recognition.model import CRNN

#: The shipped word splitter inside the package.
DEFAULT_WEIGHTS = models_dir() / "wordsplit.pt"

#: Each side of a box is widened by this many box heights before it is read, so a word that
#: runs past the detector's box end is still seen whole.
PAD_X = 0.3


@dataclass(frozen=True)
class SplitConfig:
    """Post-processing of the per-frame word probabilities.

    Attributes:
        threshold: a frame is inside a word when its probability is at least this.
        min_gap: gaps shorter than this many box heights are bridged (letter gaps).
        min_word: runs shorter than this many box heights are dropped (specks).
        drop_empty: a box with no word left is dropped (else it is kept whole).
        trim_lines: at ``level="line"``, a line's ends move to its first word's start and its
            last word's end.
        line_gap: at ``level="line"``, a line is also cut where the space between two of its
            words exceeds this many word heights (each part trimmed to its words); ``None``
            keeps lines whole.
    """

    # Chosen on training data only (`python benchmarks/det_heldout.py`, with the detector; held-out photos IoU
    # word / DetEval line, paste-holdout IoU word, combined as in the detector's model card):
    # threshold 0.4 0.695 / 0.775 / 0.874 -> 0.805, 0.5 0.661 / 0.775 / 0.879 -> 0.799, 0.6 0.795.
    # Bridging gaps under 0.1 x the height changed nothing (the network leaves no such gaps), and
    # trimming lines to their words moved the combined score by under 0.003 either way.
    threshold: float = 0.4
    min_gap: float = 0.0
    min_word: float = 0.25
    drop_empty: bool = True
    trim_lines: bool = False
    line_gap: float | None = None


def word_runs(prob: np.ndarray, height: float, cfg: SplitConfig = SplitConfig(),
              frame: int = FRAME_STRIDE) -> list[tuple[int, int]]:
    """Column ranges ``[start, end)`` of the words in a crop ``height`` px high from its per-frame
    word probabilities ``prob`` (``frame`` columns each), left to right."""
    starts, ends = true_runs(np.asarray(prob) >= cfg.threshold)
    runs: list[list[int]] = []
    for s, e in zip(starts, ends):
        if runs and (s - runs[-1][1]) * frame < cfg.min_gap * height:
            runs[-1][1] = e
        else:
            runs.append([s, e])
    return [(int(s) * frame, int(e) * frame) for s, e in runs if (e - s) * frame >= cfg.min_word * height]


def read_crop(image: np.ndarray, quad: np.ndarray) -> LineCrop | None:
    """A box as the splitter reads it (upright, height 32, widened by :data:`PAD_X` heights each
    side); ``None`` for boxes it leaves whole (degenerate, or taller than wide: vertical text)."""
    width, height = quad_size(np.asarray(quad, np.float32))
    if height < 1 or width <= height:
        return None
    return crop_line(image, quad, pad_x=PAD_X, pad_y=0.0, min_height=32, max_height=32)


class WordSplitter:
    """Splits boxes on an image into word boxes (see module notes).

    Args:
        model: a CRNN frame tagger with two classes, in eval mode (see :meth:`load`).
        config: post-processing settings.
    """

    def __init__(self, model: "CRNN", config: SplitConfig = SplitConfig(), name: str = "wordsplit"):
        if model.config.num_outputs != 2:
            raise ValueError(f"a word splitter needs a 2-class frame tagger, got {model.config.num_outputs} classes")
        self.config = config
        self.name = name
        self._frames = Recognizer(model.eval(), rotate_tall=None, name=name)

    @classmethod
    def load(cls, path: str | Path | None = None, **kwargs) -> "WordSplitter":
        """Load a model file (default: the shipped ``wordsplit.pt``, verified against its
        manifest), BatchNorms folded. The :class:`SplitConfig` settings stored with the weights
        (``scenetext export --split-threshold``) are the defaults; ``config=`` replaces them."""
        from .. import checkpoint
        from ..recognition.model import CRNN

        path = Path(path) if path else model_path("wordsplit")
        ck = checkpoint.load(path, kind="wordsplit")
        kwargs.setdefault("config", SplitConfig(**ck.get("meta", {}).get("settings", {})))
        model = Recognizer.prepare(CRNN.from_checkpoint(ck))  # the recogniser's inference preparation
        kwargs.setdefault("name", f"wordsplit-{model.config.variant}:{path.name}")
        return cls(model, **kwargs)

    def word_probs(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Per-frame word probabilities of upright crops (any height; read at height 32)."""
        if not crops:
            return []
        return [np.exp(lp[:, 1]) for lp in self._frames.log_probs(crops)]

    @property
    def rules(self) -> "SplitConfig":
        """What the detector does with a line whose boxes this splitter cut (the WordCut
        interface): drop it when no word is left, trim it to its words, cut it at wide spaces."""
        return self.config

    def cut(self, image: np.ndarray, quads: list[np.ndarray]) -> list[list[np.ndarray]]:
        """The WordCut interface: :meth:`split`."""
        return self.split(image, quads)

    def split(self, image: np.ndarray, quads: list[np.ndarray]) -> list[list[np.ndarray]]:
        """For each box on RGB ``image``: its word quads, left to right (``[]`` when dropped).
        Boxes taller than wide (vertical text) are left whole."""
        out: list[list[np.ndarray] | None] = [None] * len(quads)
        crops, where = [], []
        for i, quad in enumerate(quads):
            crop = read_crop(image, quad)
            if crop is None:
                out[i] = [np.asarray(quad, np.float32)]
                continue
            crops.append(crop)
            where.append(i)
        probs = self.word_probs([c.image for c in crops])
        for crop, prob, i in zip(crops, probs, where):
            # The network's frames cover the crop resized to a width that is a multiple of 4.
            fx = crop.image.shape[1] / max(len(prob) * FRAME_STRIDE, 1)
            runs = word_runs(prob, float(crop.image.shape[0]), self.config)
            if not runs:
                out[i] = [] if self.config.drop_empty else [np.asarray(quads[i], np.float32)]
            else:
                out[i] = [crop.span_to_image(a * fx, b * fx) for a, b in runs]
        return out  # type: ignore[return-value]
