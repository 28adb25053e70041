"""Detector: loads a CTPN model file and finds text lines (or words) in RGB photos."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .. import checkpoint
from ..nn import fold_batchnorm
from .anchors import STRIDE
from .lines import Grouped, LineConfig, connect_grouped, nms_quads
from .model import CTPN, CTPNConfig, normalize
from .proposals import decode_proposals
from .splitter import WordSplitter
from .words import InkSplit, split_by_ink

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "ctpn.pt"


@dataclass
class DetectedText:
    quad: np.ndarray  # (4, 2) float32, clockwise from the top-left, in original-image pixels
    score: float
    #: At ``level="line"``: the line's word boxes, left to right (same form as ``quad``).
    words: list[np.ndarray] = field(default_factory=list)


def resize_for_scale(rgb: np.ndarray, scale: int, max_side: int) -> tuple[np.ndarray, float, float]:
    """Resize so the short side is ``scale`` px and the long side at most ``max_side``.
    Returns the image and the x and y factors (resized / original)."""
    h, w = rgb.shape[:2]
    factor = min(scale / min(h, w), max_side / max(h, w))
    new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, (new_w, new_h), interpolation=interpolation), new_w / w, new_h / h


#: Default short side the detector sees and cap on the long side: a 1280x720 photo is read at
#: its own size. Chosen among 600/1200 (the paper's), 720/1280, 800/1440 and 900/1600 on the 25
#: photos held out of the training sets (session-1 weights): DetEval line hmean 0.69/0.74/0.54/0.62,
#: IoU word (ICDAR 2003 part) 0.47/0.56/0.40/0.57. Validation sets were not used.
DEFAULT_SCALE = 720
DEFAULT_MAX_SIDE = 1280


#: How each setting a model file may carry (``checkpoint.SETTINGS["ctpn"]``) becomes an argument.
_SETTING_TYPES = {"score_threshold": float, "line_min_score": float, "scales": lambda v: tuple(int(s) for s in v),
                  "max_side": int}


class Detector:
    """CTPN text detector.

    Args:
        model: a CTPN in eval mode (see :meth:`load`).
        scales: short-side sizes to run at; results of several scales are merged by line NMS.
        max_side: cap on the long side of the resized image.
        score_threshold: proposals scoring at most this are dropped.
        proposal_nms: IoU threshold of the NMS on proposals.
        lines: line-construction settings.
        word_split: how each word box (split at proposal gaps) is cut further, for spaces too
            narrow for the 16-px proposal grid: a :class:`~.splitter.WordSplitter` (learned; it
            also trims box ends and drops boxes it finds no word in), an :class:`~.words.InkSplit`
            (where the photo's pixels go blank for a while), or ``None`` (proposal gaps alone).
    """

    def __init__(self, model: CTPN, scales: tuple[int, ...] = (DEFAULT_SCALE,), max_side: int = DEFAULT_MAX_SIDE,
                 score_threshold: float = 0.7, proposal_nms: float = 0.3, lines: LineConfig | None = None,
                 name: str = "ctpn", word_split: WordSplitter | InkSplit | None = InkSplit()):
        self.model = model.eval()
        self.scales = tuple(scales)
        self.max_side = max_side
        self.score_threshold = score_threshold
        self.proposal_nms = proposal_nms
        self.lines = lines or LineConfig()
        self.word_split = word_split
        self.name = name

    @classmethod
    def load(cls, path: str | Path | None = None, **kwargs) -> "Detector":
        """Load a model file (default ``weights/ctpn.pt``) with its BatchNorms folded.

        Settings stored with the weights (``scenetext export --score-threshold/--line-min-score/
        --scale/--max-side``) are the defaults; arguments passed here win (``line_min_score``,
        ``LineConfig.min_score``, is also accepted here; a ``lines=`` argument replaces it).
        Words are cut by the shipped word splitter (``weights/wordsplit.pt``) when it is there,
        else by the blank-column split; ``word_split=`` chooses.
        """
        path = Path(path) if path else DEFAULT_WEIGHTS
        ck = checkpoint.load(path, kind="ctpn")
        stored = ck.get("meta", {}).get("settings", {})
        for name, value in stored.items():
            kwargs.setdefault(name, _SETTING_TYPES[name](value))
        line_min_score = kwargs.pop("line_min_score", None)
        if line_min_score is not None and "lines" not in kwargs:
            kwargs["lines"] = LineConfig(min_score=line_min_score)
        model = CTPN(CTPNConfig.from_dict(ck["config"]))
        model.load_state_dict(ck["state_dict"])
        fold_batchnorm(model.eval())
        # Channels-last weights and activations run the convolutions ~20 % faster on a CPU (same
        # results to 1e-5). Only for a model loaded here: a training run's model keeps its layout.
        model.to(memory_format=torch.channels_last)
        if "word_split" not in kwargs:
            kwargs["word_split"] = default_word_split()
        name = f"ctpn-{model.config.variant}:{path.name}"
        if isinstance(kwargs["word_split"], WordSplitter):
            name += f"+{kwargs['word_split'].name}"  # results name every model that shaped them
        kwargs.setdefault("name", name)
        return cls(model, **kwargs)

    @torch.inference_mode()
    def _detect_at(self, rgb: np.ndarray, scale: int) -> list[Grouped]:
        """Lines with their words at one scale, in original-image pixels."""
        image, fx, fy = resize_for_scale(rgb, scale, self.max_side)
        out = self.model(normalize(image, pad_to=STRIDE, channels_last=True))
        proposals = decode_proposals(
            out["scores"][0].numpy(), out["vertical"][0].numpy(), out["side"][0].numpy(), image.shape[:2],
            self.score_threshold, self.proposal_nms, self.model.config.anchor_heights,
        )
        f = np.array([fx, fy], np.float32)
        return [(quad / f, score, [(word / f, word_score) for word, word_score in words])
                for quad, score, words in connect_grouped(proposals, self.lines)]

    def detect(self, rgb: np.ndarray, level: str = "line") -> list[DetectedText]:
        """Text in an RGB uint8 ``(H, W, 3)`` image: one quadrilateral per line (``level="line"``)
        or per word (``level="word"``), lines best score first, a line's words left to right.

        A line also carries its word boxes (``DetectedText.words``): split at wide gaps between
        proposals and then by ``word_split``. A word splitter drops the boxes it finds no word in,
        and a line left with no word goes with them."""
        if level not in ("line", "word"):
            raise ValueError(f"level must be 'line' or 'word', got {level!r}")
        found = [item for scale in self.scales for item in self._detect_at(rgb, scale)]
        if level == "word":
            found = [(word, score, []) for _, _, words in found for word, score in words]
        if len(self.scales) > 1 and found:
            keep = nms_quads([q for q, _, _ in found], np.array([s for _, s, _ in found]), self.lines.nms_threshold)
            found = [found[k] for k in keep]
        h, w = rgb.shape[:2]

        def clip(quad: np.ndarray) -> np.ndarray:
            return np.clip(quad, 0, [w, h]).astype(np.float32)

        if level == "word":
            pieces = self._cut(rgb, [quad for quad, _, _ in found])
            return [DetectedText(clip(piece), float(score)) for (_, score, _), cut in zip(found, pieces) for piece in cut]
        word_lists = [[word for word, _ in words] for _, _, words in found]
        cuts = iter(self._cut(rgb, [word for words in word_lists for word in words]))
        out = []
        cfg = self.word_split.config if isinstance(self.word_split, WordSplitter) else None
        for (quad, score, _), words in zip(found, word_lists):
            pieces = [clip(piece) for _ in words for piece in next(cuts)]
            if cfg is not None and words and not pieces and cfg.drop_empty:
                continue  # no word in it: not text
            if cfg is not None and pieces and (cfg.trim_lines or cfg.line_gap is not None):
                for group in _word_groups(pieces, cfg.line_gap):
                    # A line runs from its first word's start to its last word's end.
                    line = np.stack([group[0][0], group[-1][1], group[-1][2], group[0][3]])
                    out.append(DetectedText(clip(line), float(score), group))
                continue
            out.append(DetectedText(clip(quad), float(score), pieces))
        return out

    def _cut(self, rgb: np.ndarray, quads: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Each word box cut into words by ``word_split`` (``[quad]`` when left whole; ``[]`` when
        the word splitter drops it)."""
        if self.word_split is None:
            return [[quad] for quad in quads]
        if isinstance(self.word_split, WordSplitter):
            return self.word_split.split(rgb, quads)
        return [split_by_ink(rgb, quad, self.word_split) for quad in quads]


def _word_groups(words: list[np.ndarray], gap: float | None) -> list[list[np.ndarray]]:
    """A line's words (quads clockwise from the top-left, left to right) in runs whose spaces
    are at most ``gap`` x the word height (one run when ``gap`` is None)."""
    if gap is None or len(words) < 2:
        return [words]
    groups = [[words[0]]]
    for prev, word in zip(words, words[1:]):
        height = float(np.linalg.norm(word[3] - word[0]))
        direction = prev[1] - prev[0]
        direction = direction / max(float(np.linalg.norm(direction)), 1e-6)
        space = float(np.dot(word[0] - prev[1], direction))
        if space > gap * height:
            groups.append([word])
        else:
            groups[-1].append(word)
    return groups


def default_word_split() -> WordSplitter | InkSplit:
    """The shipped word splitter if its weights are there, else the blank-column split."""
    from .splitter import DEFAULT_WEIGHTS as SPLITTER_WEIGHTS

    return WordSplitter.load(SPLITTER_WEIGHTS) if SPLITTER_WEIGHTS.is_file() else InkSplit()


def word_split_from(choice: str) -> WordSplitter | InkSplit | None:
    """A ``word_split`` from its command-line name: ``auto`` (:func:`default_word_split`),
    ``ink``, ``none`` or the path of a word-splitter file."""
    if choice == "auto":
        return default_word_split()
    if choice == "ink":
        return InkSplit()
    if choice == "none":
        return None
    return WordSplitter.load(choice)
