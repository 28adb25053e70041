"""Detector: loads a CTPN model file and finds text lines (or words) in RGB photos."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import cv2
import numpy as np

from ..crop import span_of
from ..evaluation.iou import inside_fractions, polygons
from ..runtime.inference import inference
from ..shipped import model_path, models_dir
from .anchors import STRIDE
from .lines import Grouped, LineConfig, connect_grouped, grow_vertically
from .oriented import connect_oriented, grow_across
from .proposals import Proposals, decode_proposals, slice_nms, text_probability
from .splitter import WordSplitter
from .words import InkSplit

if TYPE_CHECKING:
    from .model import CTPN

#: The shipped detector inside the package.
DEFAULT_WEIGHTS = models_dir() / "ctpn.pt"


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
#: photos held out of the training sets (the first trained weights): DetEval line hmean 0.69/0.74/0.54/0.62,
#: IoU word (ICDAR 2003 part) 0.47/0.56/0.40/0.57. Validation sets were not used.
DEFAULT_SCALE = 720
DEFAULT_MAX_SIDE = 1280


#: How each setting a model file may carry (``checkpoint.SETTINGS["ctpn"]``) becomes an argument.
_SETTING_TYPES = {"score_threshold": float, "line_min_score": float, "scales": lambda v: tuple(int(s) for s in v),
                  "max_side": int, "zoom": lambda v: Zoom(**v) if v else None, "line_margin": float,
                  "line_builder": str, "read_line_min_score": float}


@dataclass(frozen=True)
class LineBuilder:
    """How proposals become lines with their words, and how a line box is grown by a margin."""

    connect: Callable[[Proposals, LineConfig], list[Grouped]]
    grow: Callable[[np.ndarray, float], np.ndarray]


#: ``Detector(line_builder=...)``: ``columns`` (:mod:`.lines`, horizontal and slanted lines) or
#: ``oriented`` (:mod:`.oriented`, lines at any angle and across wide gaps).
LINE_BUILDERS = {"columns": LineBuilder(connect_grouped, grow_vertically),
                 "oriented": LineBuilder(connect_oriented, grow_across)}


class Detector:
    """CTPN text detector.

    Args:
        model: a CTPN in eval mode (see :meth:`load`).
        scales: short-side sizes to run at. The first scale's lines are all kept; each further
            scale (a larger one, for small text) only adds the lines that lie mostly outside every
            line found before it (:func:`new_lines`), so a large line is not also returned in
            pieces.
        cover_threshold: a further scale's line is dropped when more than this share of its area
            lies inside one earlier line.
        zoom: a closer look at the first scale's weak spots for small text (:class:`Zoom`), or
            ``None``.
        max_side: cap on the long side of the resized image.
        score_threshold: proposals scoring at most this are dropped.
        proposal_nms: IoU threshold of the NMS on proposals.
        lines: line-construction settings.
        line_builder: a name in :data:`LINE_BUILDERS`.
        line_margin: line boxes (``level="line"``) are returned grown by this share of their
            height above and below; word boxes are not. A line's top and bottom edges are fitted
            through the middle of its proposals' tops and bottoms, so the taller letters and the
            margin annotators draw round a word stick out of it, and a line that covers less than
            80 % of a word does not find it under DetEval.
        word_split: how each word box (split at proposal gaps) is cut further, for spaces too
            narrow for the 16-px proposal grid: any :class:`WordCut` — a
            :class:`~.splitter.WordSplitter` (learned; it also trims box ends and drops boxes it
            finds no word in) or an :class:`~.words.InkSplit` (where the photo's pixels go blank
            for a while) — or ``None`` (proposal gaps alone); ``"auto"`` (the default, here and
            in :meth:`load`): :func:`default_word_split`.
        read_line_min_score: the lines' ``min_score`` when a recogniser reads what this
            detector finds (:meth:`for_reading`, what the :class:`~scenetext.reader.Reader` runs):
            the recogniser's confidence drops the false lines a lower score lets through, so a
            pipeline keeps less sure lines than the detector on its own; ``None``: the same as
            ``lines.min_score``.
    """

    def __init__(self, model: CTPN, scales: tuple[int, ...] = (DEFAULT_SCALE,), max_side: int = DEFAULT_MAX_SIDE,
                 score_threshold: float = 0.7, proposal_nms: float = 0.3, lines: LineConfig | None = None,
                 name: str = "ctpn", word_split: "WordCut | str | None" = "auto",
                 cover_threshold: float = 0.5, zoom: Zoom | None = None, line_margin: float = 0.0,
                 line_builder: str = "columns", read_line_min_score: float | None = None):
        self.model = model.eval()
        if read_line_min_score is not None and not 0 <= read_line_min_score <= 1:
            raise ValueError(f"read_line_min_score must be from 0 to 1, got {read_line_min_score}")
        self.read_line_min_score = read_line_min_score
        if line_builder not in LINE_BUILDERS:
            raise ValueError(f"line_builder must be one of {', '.join(LINE_BUILDERS)}, got {line_builder!r}")
        self.line_builder = line_builder
        if line_margin < 0:
            raise ValueError(f"line_margin must be >= 0, got {line_margin}")
        self.line_margin = line_margin
        self.scales = tuple(scales)
        if not self.scales:
            raise ValueError("at least one scale is needed")
        self.cover_threshold = cover_threshold
        self.zoom = zoom
        self.max_side = max_side
        self.score_threshold = score_threshold
        self.proposal_nms = proposal_nms
        self.lines = lines or LineConfig()
        if word_split == "auto":
            word_split = default_word_split()
        elif isinstance(word_split, str):
            raise ValueError(f"word_split must be a word cut, None or 'auto', got {word_split!r}")
        self.word_split: WordCut | None = word_split
        self.name = name

    @classmethod
    def load(cls, path: str | Path | None = None, **kwargs) -> "Detector":
        """Load a model file (default: the shipped ``ctpn.pt``, verified against its manifest) with
        its BatchNorms folded.

        Settings stored with the weights (``scenetext export --score-threshold/--line-min-score/
        --scale/--max-side``) are the defaults; arguments passed here win (``line_min_score``,
        ``LineConfig.min_score``, is also accepted here; a ``lines=`` argument replaces it).
        Words are cut as by :class:`Detector` (``word_split="auto"``: the shipped word splitter,
        ``wordsplit.pt``, when it is there, else the blank-column split); ``word_split=`` chooses.
        """
        import torch

        from .. import checkpoint
        from ..nn import fold_batchnorm
        from .model import CTPN

        path = Path(path) if path else model_path("ctpn")
        ck = checkpoint.load(path, kind="ctpn")
        model = CTPN.from_checkpoint(ck)
        fold_batchnorm(model.eval())
        # Channels-last weights and activations run the convolutions ~20 % faster on a CPU (same
        # results to 1e-5). Only for a model loaded here: a training run's model keeps its layout.
        model.to(memory_format=torch.channels_last)
        return cls.from_network(model, path.name, ck.get("meta", {}).get("settings", {}), **kwargs)

    @classmethod
    def from_network(cls, model, file_name: str, settings: dict, **kwargs) -> "Detector":
        """A detector around a network made for inference (:meth:`load`'s, or an onnxruntime
        session, :mod:`scenetext.runtime.onnxrt`) with the settings its weights file stores
        (arguments win); ``file_name`` names it."""
        for name, value in settings.items():
            kwargs.setdefault(name, _SETTING_TYPES[name](value))
        line_min_score = kwargs.pop("line_min_score", None)
        if line_min_score is not None and "lines" not in kwargs:
            kwargs["lines"] = LineConfig(min_score=line_min_score)
        if kwargs.get("word_split", "auto") == "auto":
            kwargs["word_split"] = default_word_split()
        name = f"ctpn-{model.config.variant}:{file_name}"
        if getattr(kwargs["word_split"], "name", None):
            name += f"+{kwargs['word_split'].name}"  # results name every model that shaped them
        kwargs.setdefault("name", name)
        return cls(model, **kwargs)

    def for_reading(self) -> "Detector":
        """This detector as it runs with a recogniser behind it: lines kept down to
        :attr:`read_line_min_score` (a copy sharing the network), or itself when that is unset or
        already its lines' ``min_score``."""
        if self.read_line_min_score is None or self.read_line_min_score == self.lines.min_score:
            return self
        reading = copy.copy(self)
        reading.lines = replace(self.lines, min_score=self.read_line_min_score)
        return reading

    def _propose(self, image: np.ndarray) -> tuple[Proposals, np.ndarray]:
        """The model on one (resized) image: its proposals and each stride-16 cell's best text
        probability over the anchors, ``(ceil(H / 16), ceil(W / 16))``."""
        with inference(self.model):
            return self._decode(self.model.forward_rgb(image), image.shape[:2])

    def _decode(self, out: dict, size: tuple[int, int]) -> tuple[Proposals, np.ndarray]:
        """Proposals from the network's outputs (torch tensors or arrays) for an image of ``size``."""
        scores = np.asarray(out["scores"][0])
        proposals = decode_proposals(
            scores, np.asarray(out["vertical"][0]), np.asarray(out["side"][0]), size,
            self.score_threshold, self.proposal_nms, self.model.config.anchor_heights,
        )
        return proposals, text_probability(scores).max(axis=2)

    def _lines(self, proposals: Proposals, fx: float, fy: float) -> list[Grouped]:
        """Lines with their words from proposals of an image resized by ``(fx, fy)``, in
        original-image pixels."""
        f = np.array([fx, fy], np.float32)
        return [(quad / f, score, [(word / f, word_score) for word, word_score in words])
                for quad, score, words in LINE_BUILDERS[self.line_builder].connect(proposals, self.lines)]

    def _detect_at(self, rgb: np.ndarray, scale: int, zoom: Zoom | None = None) -> list[Grouped]:
        """Lines with their words at one scale, in original-image pixels; with ``zoom``, also
        what the closer look adds."""
        image, fx, fy = resize_for_scale(rgb, scale, self.max_side)
        proposals, cells = self._propose(image)
        found = self._lines(proposals, fx, fy)
        if zoom is None:
            return found
        ratio = zoom.scale / scale
        zx, zy = fx * ratio, fy * ratio
        h, w = rgb.shape[:2]
        size = (max(1, round(w * zx)), max(1, round(h * zy)))
        covered = [np.concatenate([q.min(axis=0), q.max(axis=0)]) * np.array([fx, fy, fx, fy]) for q, _, _ in found]
        rects = zoom_regions(cells, covered, zoom, (size[0] / image.shape[1], size[1] / image.shape[0]), size)
        if not rects:
            return found
        zoomed = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        crops = [zoomed[y0:y1, x0:x1] for x0, y0, x1, y1 in rects]
        with inference(self.model):
            outs = self.model.forward_many([self.model.normalize(c, pad_to=STRIDE) for c in crops])
        parts = [self._decode(out, crop.shape[:2])[0].shifted(x0, y0)
                 for out, crop, (x0, y0, _, _) in zip(outs, crops, rects)]
        proposals = Proposals.concatenate(parts)
        # Regions may overlap (grown to whole buckets): one slice per place.
        proposals = proposals.take(slice_nms(proposals.boxes, proposals.scores, self.proposal_nms))
        extra = self._lines(proposals, size[0] / w, size[1] / h)
        return found + new_lines(found, extra, self.cover_threshold)

    def detect(self, rgb: np.ndarray, level: str = "line") -> list[DetectedText]:
        """Text in an RGB uint8 ``(H, W, 3)`` image: one quadrilateral per line (``level="line"``)
        or per word (``level="word"``), lines best score first, a line's words left to right.

        A line also carries its word boxes (``DetectedText.words``): split at wide gaps between
        proposals and then by ``word_split``. A word splitter drops the boxes it finds no word in,
        and a line left with no word goes with them."""
        if level not in ("line", "word"):
            raise ValueError(f"level must be 'line' or 'word', got {level!r}")
        found = self._detect_at(rgb, self.scales[0], self.zoom)
        for scale in self.scales[1:]:
            found += new_lines(found, self._detect_at(rgb, scale), self.cover_threshold)
        if level == "word":
            found = [(word, score, []) for _, _, words in found for word, score in words]
        h, w = rgb.shape[:2]

        def clip(quad: np.ndarray) -> np.ndarray:
            return np.clip(quad, 0, [w, h]).astype(np.float32)

        def line_box(quad: np.ndarray) -> np.ndarray:
            return clip(LINE_BUILDERS[self.line_builder].grow(quad, self.line_margin))

        if level == "word":
            pieces = self._cut(rgb, [quad for quad, _, _ in found])
            return [DetectedText(clip(piece), float(score)) for (_, score, _), cut in zip(found, pieces) for piece in cut]
        word_lists = [[word for word, _ in words] for _, _, words in found]
        cuts = iter(self._cut(rgb, [word for words in word_lists for word in words]))
        out = []
        cfg = getattr(self.word_split, "rules", None)
        for (quad, score, _), words in zip(found, word_lists):
            pieces = [clip(piece) for _ in words for piece in next(cuts)]
            if cfg is not None and words and not pieces and cfg.drop_empty:
                continue  # no word in it: not text
            if cfg is not None and pieces and (cfg.trim_lines or cfg.line_gap is not None):
                for group in _word_groups(pieces, cfg.line_gap):
                    # A line runs from its first word's start to its last word's end.
                    out.append(DetectedText(line_box(span_of(group)), float(score), group))
                continue
            out.append(DetectedText(line_box(quad), float(score), pieces))
        return out

    def _cut(self, rgb: np.ndarray, quads: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Each word box cut into words by ``word_split`` (``[quad]`` when left whole; ``[]`` when
        the word splitter drops it)."""
        if self.word_split is None:
            return [[quad] for quad in quads]
        return self.word_split.cut(rgb, quads)


@dataclass
class Zoom:
    """A closer look for small text, cheaper than a second whole-image scale: after the first
    scale, the cells (16 x 16 px of its input) whose best anchor scores above ``threshold`` without
    reaching a line, with ``margin`` cells around them, are read again at the short side ``scale``
    (region by region, on the 16-px grid of that whole-image scale). Its lines join the first
    scale's the way a further scale's do (:func:`new_lines`)."""

    scale: int = 1400
    threshold: float = 0.2
    margin: int = 2
    bucket: int = 64  # region sizes are whole multiples of this (pixels)


def zoom_regions(cells: np.ndarray, covered: list[np.ndarray], zoom: Zoom, ratio: tuple[float, float],
                 size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Rectangles ``(x0, y0, x1, y1)`` of the zoomed image (``size`` = (width, height), ``ratio``
    = zoomed / first-scale pixels in x and y) to look at again: the connected groups of first-scale
    cells scoring above ``zoom.threshold`` outside the boxes ``covered`` ((x0, y0, x1, y1) in
    first-scale pixels, the lines found), grown by ``zoom.margin`` cells, moved out to the 16-px
    grid and merged while any two overlap."""
    mask = (cells > zoom.threshold).astype(np.uint8)
    for x0, y0, x1, y1 in covered:
        mask[int(y0 // STRIDE): int(np.ceil(y1 / STRIDE)), int(x0 // STRIDE): int(np.ceil(x1 / STRIDE))] = 0
    if not mask.any():
        return []
    if zoom.margin:
        mask = cv2.dilate(mask, np.ones((2 * zoom.margin + 1,) * 2, np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    rx, ry = ratio
    rects = [[int(np.floor(x * rx)) * STRIDE, int(np.floor(y * ry)) * STRIDE,
              min(size[0], int(np.ceil((x + w) * rx)) * STRIDE), min(size[1], int(np.ceil((y + h) * ry)) * STRIDE)]
             for x, y, w, h, _ in stats[1:]]
    out = []
    for x0, y0, x1, y1 in _merge_overlapping(rects):
        # Sizes rounded up to whole buckets (staying inside the image, on the grid): the same
        # few input shapes come back from photo to photo, and the convolution library reuses
        # its set-up for a shape it has seen (a new shape costs about one more pass).
        x0, x1 = _bucketed(x0, x1, size[0], zoom.bucket)
        y0, y1 = _bucketed(y0, y1, size[1], zoom.bucket)
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1, y1))
    return out


def _merge_overlapping(rects: list[list[int]]) -> list[list[int]]:
    """Rectangles ``[x0, y0, x1, y1]`` with every overlapping pair replaced by its bounding box,
    until no two overlap."""
    done: list[list[int]] = []
    pending = list(rects)
    while pending:
        a = pending.pop()
        hit = next((i for i, b in enumerate(done) if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), None)
        if hit is None:
            done.append(a)
        else:  # the grown box may now overlap others: look again
            b = done.pop(hit)
            pending.append([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])
    return done


def _bucketed(start: int, end: int, limit: int, bucket: int) -> tuple[int, int]:
    """``[start, end)`` grown to a multiple of ``bucket`` long; where that would pass ``limit``,
    moved back on the 16-px grid to end at ``limit`` (the model pads the last few pixels to the
    same multiple of 16), and cut at ``[0, limit)`` when longer than that."""
    length = -(-(end - start) // bucket) * bucket
    if start + length <= limit:
        return start, start + length
    return max(0, (limit - length) // STRIDE * STRIDE), limit


def new_lines(found: list[Grouped], extra: list[Grouped], cover_threshold: float) -> list[Grouped]:
    """The lines of ``extra`` that do not lie mostly (more than ``cover_threshold`` of their own
    area) inside one line of ``found``."""
    if not found or not extra:
        return list(extra)
    inside = inside_fractions(polygons([q for q, _, _ in extra]), polygons([q for q, _, _ in found]))
    return [item for item, cover in zip(extra, inside.max(axis=1)) if cover <= cover_threshold]


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


class WordCut(Protocol):
    """How the detector cuts its word boxes further (:class:`~.words.InkSplit`,
    :class:`~.splitter.WordSplitter`, or any object with these members).

    Attributes:
        name: the model's name, added to the detector's (``None`` for a cut with no model).
        rules: what the detector does with the lines whose boxes were cut (an object with
            ``drop_empty``, ``trim_lines`` and ``line_gap``, as :class:`~.splitter.SplitConfig`),
            or ``None``: lines are kept whole, as found.
    """

    name: str | None
    rules: object | None

    def cut(self, image: np.ndarray, quads: list[np.ndarray]) -> list[list[np.ndarray]]:
        """For each box on RGB ``image``: its word quads, left to right (``[]``: no word in it)."""


def default_word_split() -> WordSplitter | InkSplit:
    """The shipped word splitter if its weights are there, else the blank-column split."""
    from .splitter import DEFAULT_WEIGHTS as SPLITTER_WEIGHTS

    return WordSplitter.load() if SPLITTER_WEIGHTS.is_file() else InkSplit()


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
