"""Reader: the end-to-end pipeline, detect -> crop -> recognise -> words.

    >>> from scenetext import Reader
    >>> reader = Reader()                      # shipped weights, loaded on first use
    >>> page = reader.read("photo.jpg")        # path, bytes, numpy RGB or PIL image
    >>> for line in page.lines:
    ...     print(line.text, line.confidence, [w.text for w in line.words])

For each image: decode (EXIF orientation applied) -> detect lines (the detector scales big photos
down itself; crops are always taken from the full-resolution original) and, with them, each
line's word boxes -> warp each word box upright (:mod:`scenetext.crop`; over-long boxes are
split and merged) -> read every crop of the image, or of a batch of images, in one recogniser
call (it sorts crops by width and pads per batch) -> split each box's text at spaces the
recogniser still reads, placing each word from the recogniser's character positions mapped
back through the crop's homography -> drop boxes that read empty or below ``min_confidence``
and join a line's words back into the line.

A detector that gives no word boxes (or ``read_by_word=False``) has its whole lines read and
split at the recogniser's spaces. Reading word by word is the default because the recogniser
reads a word crop better than the same word inside a long line crop: on pasted-crop scenes
held out of the training data (the ``paste-holdout`` set of ``scenetext train det``), end-to-end
word hmean rose from 0.310 to 0.384.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from . import __version__
from .crop import (
    MAX_ASPECT,
    CropPiece,
    LineCrop,
    Reading,
    crop_line,
    merge_readings,
    quad_size,
    span_of,
    split_crop,
    word_spans,
)
from .imageio import ImageSource, load_image
from .results import Line, PageResult, Word

if TYPE_CHECKING:
    from .detection.predictor import Detector
    from .recognition.beam import PriorDecoder
    from .recognition.decode import Decoded, Lexicon
    from .recognition.predictor import Recognizer
    from .results import Failure

__all__ = ["LoadedImage", "Reader", "load"]

#: Detections whose quad is thinner than this (pixels) cannot be cropped and are skipped.
MIN_LINE_SIDE = 2.0
#: With ``trim_memory``, the heap is trimmed once this many images have been read since the last
#: time: after every batch of this many or more, after every this many photos read one at a time
#: (trimming after each single photo took ~10 ms of its ~90 and kept the peak no lower).
TRIM_EVERY_IMAGES = 8
LEVELS = ("line", "word")


@dataclass
class LoadedImage:
    """A decoded image: RGB ``uint8`` pixels, the path it came from (if any) and the decode time."""

    rgb: np.ndarray
    path: str | None
    decode_ms: float


def load(source: ImageSource) -> LoadedImage:
    """Decode ``source`` with :func:`scenetext.imageio.load_image`, timing it.

    Raises:
        ImageLoadError: the image cannot be read (the message names the file and the reason).
    """
    start = time.perf_counter()
    rgb = load_image(source)
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    return LoadedImage(rgb, path, _ms_since(start))


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class Reader:
    """Finds and reads the text in photos.

    Args:
        detector: a :class:`~scenetext.detection.predictor.Detector` (or any object with its
            ``detect(rgb, level)`` method), used as given; default: the shipped weights, loaded on
            first use as the pipeline runs them (``Detector.for_reading``: it keeps less sure
            lines than on its own, and ``min_confidence`` drops those that read as nothing).
        recognizer: a :class:`~scenetext.recognition.predictor.Recognizer`; default likewise.
        device: only ``"cpu"`` is supported.
        min_confidence: boxes read with a lower confidence (0-1) are dropped, and lines left empty.
        level: ``"line"`` (default) detects text lines, ``"word"`` asks the detector for word
            boxes and makes each one a :class:`~scenetext.results.Line` of its own.
        read_by_word: at ``level="line"``, read each of a line's word boxes (the detector's
            ``DetectedText.words``) on its own and join the words; False reads whole lines, from
            their first word box's start to their last one's end (a line's own box may reach
            above and below its words: ``Detector(line_margin=)``).
        lexicon: a word list (a :class:`~scenetext.recognition.decode.Lexicon`, a file path or a
            list of words) for constrained decoding; only when the recogniser is loaded here. A
            file is read when the Reader is made: one that is not a UTF-8 text file or holds no
            words is refused.
        lm: a language prior re-ranking the readings the frames support
            (:mod:`scenetext.recognition.beam`; case, punctuation and confident readings stay as
            read): ``"auto"`` (default) for English word frequencies where the Reader loads the
            recogniser without a lexicon, and none otherwise; True or ``"en"`` for English word
            frequencies, a number for that prior at this weight, a
            :class:`~scenetext.recognition.beam.PriorDecoder`, or None or False for none (greedy
            decoding); only when the recogniser is loaded here, and not with a lexicon.
        max_side: cap on the long side of the image the detector sees (default: the
            detector's own; at least 64); only when the detector is loaded here.
        zoom: a short side (e.g. 1400) at which the detector looks again where it saw weak signs
            of text (:class:`~scenetext.detection.predictor.Zoom`): more small text found, about
            a quarter to a third more detection time (at least 64); only when the detector is
            loaded here.
        detector_weights, recognizer_weights: model files to load instead of the shipped ones.
        models: a model folder (``manifest.json`` + model files, as ``scenetext finetune``
            writes): its detector and recogniser are loaded, the shipped ones for a role it
            lacks; ``detector_weights``/``recognizer_weights`` win over it.
        max_aspect: crops wider than this many heights are split (see :mod:`scenetext.crop`).
        trim_memory: every :data:`TRIM_EVERY_IMAGES` images read (after the batch that
            reaches them; for a batch of several, also after the detector's pass over it), hand
            the heap's free pages back to the system (glibc ``malloc_trim``; no setting
            changes), which keeps a long run's memory near one batch's needs
            (:mod:`scenetext.memory`).
        bound_memory: also fix the C allocator's mmap threshold, a process-wide setting that
            keeps memory flatter still at a cost in speed (off unless asked).
        backend: where the networks of the models loaded here run: ``"torch"`` or
            ``"onnxruntime"`` (the optional ``scenetext[onnx]`` extra; same text, boxes within a
            pixel); ``None``: onnxruntime for the shipped models where it is installed, else torch
            (:func:`scenetext.runtime.default_backend`).
        onnx_dir: with onnxruntime, a folder written by ``scenetext export --onnx`` to load the
            networks from (it must come from the same weights). By default the shipped models run
            from the package's own export (``scenetext/models/onnx/``), without importing torch,
            and other weights are exported in memory when they are loaded.
        threads: with onnxruntime, the threads each network runs on (default: torch's thread
            count where torch is in use, else one per core).

    Values out of range (``min_confidence`` outside 0-1 or NaN, ``max_side`` or ``zoom`` below 64)
    raise ``ValueError`` with the message ``scenetext run`` gives for them.
    """

    def __init__(self, detector: "Detector | None" = None, recognizer: "Recognizer | None" = None,
                 device: str = "cpu", min_confidence: float = 0.3, level: str = "line",
                 lexicon: "Lexicon | str | os.PathLike | Sequence[str] | None" = None,
                 max_side: int | None = None, detector_weights: str | os.PathLike | None = None,
                 recognizer_weights: str | os.PathLike | None = None, max_aspect: float = MAX_ASPECT,
                 bound_memory: bool = False, read_by_word: bool = True, zoom: int | None = None,
                 trim_memory: bool = True,
                 backend: str | None = None, onnx_dir: str | os.PathLike | None = None,
                 threads: int | None = None, models: str | os.PathLike | None = None,
                 lm: "bool | str | float | PriorDecoder | None" = "auto"):
        if device != "cpu":
            raise ValueError(f"device {device!r} is not supported: scenetext runs on the CPU")
        if level not in LEVELS:
            raise ValueError(f"level must be 'line' or 'word', got {level!r}")
        if detector is not None and (max_side is not None or detector_weights is not None or zoom is not None):
            raise ValueError("max_side, zoom and detector_weights apply only when the Reader loads the detector")
        if recognizer is not None and (lexicon is not None or recognizer_weights is not None):
            raise ValueError("lexicon and recognizer_weights apply only when the Reader loads the recognizer")
        from .options import check_confidence, check_side

        for option, check, value in (("min_confidence", check_confidence, min_confidence),
                                     ("max_side", check_side, max_side), ("zoom", check_side, zoom)):
            try:
                check(value)
            except ValueError as err:
                raise ValueError(f"{option} {err}") from None
        if lm == "auto":
            lm = "en" if recognizer is None and lexicon is None else None
        if lm is not None and lm is not False:
            if recognizer is not None or lexicon is not None:
                raise ValueError("lm applies only when the Reader loads the recognizer, and not with a lexicon")
            from .recognition.beam import check_lm

            check_lm(lm)
        if lexicon is not None:
            lexicon = _as_lexicon(lexicon)  # a file is read now: a bad one is refused here, naming it
            if not lexicon.words:
                raise ValueError("lexicon holds no words")
        if models is not None:
            from .shipped import role_path

            if detector is None and detector_weights is None:
                detector_weights = role_path("detector", models)
            if recognizer is None and recognizer_weights is None:
                recognizer_weights = role_path("recogniser", models)
        self.min_confidence = float(min_confidence)
        self.level = level
        self.read_by_word = bool(read_by_word)
        self.max_aspect = float(max_aspect)
        self._detector = detector
        self._recognizer = recognizer
        self._lexicon = lexicon
        self._lm = lm
        self._max_side = max_side
        self._zoom = zoom
        self._detector_weights = detector_weights
        self._recognizer_weights = recognizer_weights
        self._lock = threading.Lock()
        from .runtime import network_runtime, resolve_backend

        #: ``"torch"`` or ``"onnxruntime"``: where the networks of the models loaded here run.
        self.backend = resolve_backend(backend, shipped_models=detector_weights is None and recognizer_weights is None)
        if threads is not None and (self.backend != "onnxruntime" or threads < 1):
            raise ValueError("threads applies to the onnxruntime backend (at least 1); torch's thread count is "
                             "process-wide: torch.set_num_threads")
        self._runtime = network_runtime(self.backend, onnx_dir, threads)
        self.trim_memory = bool(trim_memory)
        self._read_since_trim = 0
        if bound_memory:
            from .memory import bound_heap

            bound_heap()

    # ------------------------------------------------------------------ models

    @property
    def detector(self) -> "Detector":
        """The detector, loaded on first access."""
        with self._lock:
            if self._detector is None:
                from .detection.predictor import Detector, Zoom

                options: dict[str, Any] = {} if self._max_side is None else {"max_side": self._max_side}
                if self._zoom is not None:
                    options["zoom"] = Zoom(self._zoom)
                if self._shipped_onnx(self._detector_weights):
                    detector = self._runtime.load_detector(**options)
                else:
                    detector = Detector.load(self._detector_weights, **options)
                    if self._runtime is not None:
                        self._runtime.attach(detector=detector)
                self._detector = detector.for_reading()
            return self._detector

    @property
    def recognizer(self) -> "Recognizer":
        """The recogniser, loaded on first access."""
        with self._lock:
            if self._recognizer is None:
                from .recognition.beam import lm_decoder
                from .recognition.predictor import Recognizer

                options = {"lexicon": _as_lexicon(self._lexicon), "lm": lm_decoder(self._lm)}
                if self._shipped_onnx(self._recognizer_weights):
                    self._recognizer = self._runtime.load_recognizer(**options)
                else:
                    self._recognizer = Recognizer.load(self._recognizer_weights, **options)
                    if self._runtime is not None:
                        self._runtime.attach(recognizer=self._recognizer)
            return self._recognizer

    def _shipped_onnx(self, weights) -> bool:
        """Whether a shipped model (no ``weights`` given) runs from the package's ONNX export,
        without torch: on onnxruntime with no ``onnx_dir`` of the caller's."""
        if self._runtime is None or weights is not None or self._runtime.folder is not None:
            return False
        from .runtime import shipped_export_present

        return shipped_export_present()

    @property
    def models(self) -> dict[str, str]:
        """Identifiers of the models (loads them)."""
        return {"detector": _model_name(self.detector), "recognizer": _model_name(self.recognizer)}

    def load_models(self) -> "Reader":
        """Load both models now (they are otherwise loaded on first use); returns ``self``."""
        _ = self.detector, self.recognizer
        return self

    # ------------------------------------------------------------------ reading

    def read(self, image: ImageSource) -> PageResult:
        """Read one image: a path, encoded bytes, an RGB numpy array or a PIL image.

        Raises:
            ImageLoadError: the image cannot be decoded.
        """
        return self.read_loaded([load(image)])[0]

    def read_many(self, images: Iterable[ImageSource], batch_images: int = 8,
                  on_error: str = "raise") -> Iterator["PageResult | Failure"]:
        """Read many images, ``batch_images`` at a time with one recogniser call per batch.

        Results come in input order, one per good image, whatever fails beside them. An image
        that cannot be read (it cannot be decoded, or the models fail on it alone) is handled
        by ``on_error``:

        * ``"raise"`` (default): every result before it is yielded, then its error is raised
          (:class:`~scenetext.imageio.ImageLoadError` for an image that cannot be decoded).
          Like any generator that raises, the iteration then ends: to go on past bad images,
          use ``"skip"`` or ``"return"``.
        * ``"skip"``: it is left out; the iteration goes on.
        * ``"return"``: a :class:`~scenetext.results.Failure` (its ``path``, a one-line
          ``reason`` and the ``error``) is yielded in its place; the iteration goes on.
        """
        from .batch import failure_reason, read_isolated
        from .imageio import ImageLoadError
        from .results import Failure

        if on_error not in ("raise", "skip", "return"):
            raise ValueError(f"on_error must be 'raise', 'skip' or 'return', got {on_error!r}")
        if batch_images < 1:
            raise ValueError("batch_images must be at least 1")
        iterator = iter(images)
        while batch := list(itertools.islice(iterator, batch_images)):
            outcomes: list[LoadedImage | Exception] = []
            for source in batch:
                try:
                    outcomes.append(load(source))
                except Exception as err:  # noqa: BLE001 - handled per image by on_error
                    outcomes.append(err)
            pages = iter(read_isolated(self, [o for o in outcomes if isinstance(o, LoadedImage)]))
            for source, outcome in zip(batch, outcomes):
                result = next(pages) if isinstance(outcome, LoadedImage) else outcome
                if not isinstance(result, Exception):
                    yield result
                elif on_error == "raise":
                    raise result
                elif on_error == "return":
                    name = getattr(result, "source", None) or (
                        os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>")
                    reason = failure_reason(result)
                    yield Failure(name, reason if isinstance(result, ImageLoadError) else f"processing failed: {reason}",
                                  result)

    def read_loaded(self, images: Sequence[LoadedImage]) -> list[PageResult]:
        """Read already decoded images, recognising all their lines in one recogniser call.

        The recogniser's time is shared among the images in proportion to their crops' widths
        (at the recogniser's height), so per-image timings add up to the batch's time.
        """
        if not images:
            return []
        found = [self._detect(image.rgb) for image in images]
        if self.trim_memory and len(images) > 1:  # the detector's maps of several photos are gone
            _trim_heap()
        start = time.perf_counter()
        boxes = [BoxToRead(page, line, crop, split_crop(crop.image, self.max_aspect))
                 for page, (image, detected) in enumerate(zip(images, found))
                 for line, detection in enumerate(detected.lines)
                 for crop in (crop_line(image.rgb, box) for box in detection.boxes)]
        self._recognize(boxes)
        by_line: dict[tuple[int, int], list[BoxToRead]] = {}
        for box in boxes:
            by_line.setdefault((box.page, box.line), []).append(box)
        shares = _shares([[p.image for box in boxes if box.page == page for p in box.pieces]
                          for page in range(len(images))])
        recognize_ms = _ms_since(start)
        models = self.models
        results = []
        for page, (image, detected, share) in enumerate(zip(images, found, shares)):
            lines = [self._line(d.quad, by_line.get((page, i), [])) for i, d in enumerate(detected.lines)]
            rec_ms = recognize_ms * share
            height, width = image.rgb.shape[:2]
            timings = {"decode": image.decode_ms, "detect": detected.ms, "recognize": rec_ms,
                       "total": image.decode_ms + detected.ms + rec_ms}
            results.append(PageResult(image.path, width, height, [line for line in lines if line is not None],
                                      timings, dict(models), __version__))
        self._read_since_trim += len(images)
        if self.trim_memory and self._read_since_trim >= TRIM_EVERY_IMAGES:
            _trim_heap()
            self._read_since_trim = 0
        return results

    def boxes_to_read(self, rgb: np.ndarray) -> list[np.ndarray]:
        """The boxes this reader crops and reads in an RGB image, quads ``(4, 2)`` in its pixels:
        each detected line's word boxes, or the line itself (see ``level`` and ``read_by_word``)."""
        return [box for line in self._detect(rgb).lines for box in line.boxes]

    def _detect(self, rgb: np.ndarray) -> "PageDetections":
        """Each detection's quad and the boxes to read for it (its word boxes, or itself), skipping
        boxes too thin to crop; and the time taken."""
        start = time.perf_counter()
        found = []
        for d in self.detector.detect(rgb, level=self.level):
            quad = np.asarray(d.quad, dtype=np.float32)
            words = [np.asarray(w, dtype=np.float32) for w in getattr(d, "words", None) or ()]
            if self.level != "line" or not words:
                boxes = [quad]
            elif self.read_by_word:
                boxes = words
            else:  # the line's words end to end: its own box may have a margin round them
                boxes = [span_of(words)]
            boxes = [box for box in boxes if min(quad_size(box)) >= MIN_LINE_SIDE]
            if boxes:
                found.append(LineToRead(quad, boxes))
        return PageDetections(found, _ms_since(start))

    def _recognize(self, boxes: list["BoxToRead"]) -> None:
        """Read every piece of every box in one recogniser call; each box gets its readings."""
        flat = [p.image for box in boxes for p in box.pieces]
        decoded = iter(self.recognizer.recognize(flat, orient=False))  # crop.py turns vertical lines
        for box in boxes:
            box.readings = [self._reading(next(decoded), p.image) for p in box.pieces]

    def _reading(self, decoded: "Decoded", image: np.ndarray) -> Reading:
        """A decoder result with its character frames turned into crop columns.

        The recogniser scales a crop to height 32 and a width rounded to a multiple of
        ``FRAME_STRIDE`` (:func:`~scenetext.recognition.preprocess.target_width`); frame ``t``
        covers columns ``[FRAME_STRIDE * t, FRAME_STRIDE * (t + 1))`` of that.
        """
        from .recognition.preprocess import FRAME_STRIDE, target_width

        height, width = image.shape[:2]
        column = FRAME_STRIDE * width / target_width(width, height, max_width=self.recognizer.max_width)
        spans = [(start * column, end * column) for start, end in decoded.char_frames]
        return Reading(decoded.text, float(decoded.confidence), list(decoded.char_confidences), spans)

    def _line(self, quad: np.ndarray, boxes: list["BoxToRead"]) -> Line | None:
        """A result line from the readings of its boxes, or ``None`` when every box reads empty or
        below ``min_confidence``. Its confidence is the mean log-confidence over the kept
        characters (the geometric mean, as for one box)."""
        kept = [text for text in map(self._box, boxes) if text is not None]
        if not kept:
            return None
        weights = np.array([len(box.text.replace(" ", "")) for box in kept], np.float64)
        logs = np.log(np.maximum([box.confidence for box in kept], 1e-12))
        confidence = float(np.exp(np.average(logs, weights=weights if weights.sum() else None)))
        return Line(quad, " ".join(box.text for box in kept), confidence, [w for box in kept for w in box.words])

    def _box(self, box: "BoxToRead") -> "BoxText | None":
        """One box's text, confidence and words, or ``None`` when it reads empty or too unsure."""
        reading = merge_readings(box.pieces, box.readings)
        text = reading.text.strip()
        if not text or reading.confidence < self.min_confidence:
            return None
        left, _, right, _ = box.crop.inner
        words = [Word(box.crop.span_to_image(span.left, span.right), span.text, span.confidence)
                 for span in word_spans(reading, left, right)]
        return BoxText(" ".join(text.split()), reading.confidence, words)


# --------------------------------------------------------------------------- records of a read


@dataclass(frozen=True)
class LineToRead:
    """A detected line: its quad, and the boxes read for it (its word boxes, or the line itself)."""

    quad: np.ndarray
    boxes: list[np.ndarray]


@dataclass(frozen=True)
class PageDetections:
    """What the detector found on one image, and how long it took (ms)."""

    lines: list[LineToRead]
    ms: float


@dataclass
class BoxToRead:
    """One box of a batch: which image and line it belongs to, its upright crop, the pieces the
    recogniser reads (one, or several for an over-long crop) and, once read, their readings."""

    page: int
    line: int
    crop: LineCrop
    pieces: list[CropPiece]
    readings: list[Reading] = field(default_factory=list)


@dataclass(frozen=True)
class BoxText:
    """A box's kept reading: its text, confidence and word boxes in image pixels."""

    text: str
    confidence: float
    words: list[Word]


def _trim_heap() -> None:
    """:func:`scenetext.memory.trim_heap` (imported when first needed)."""
    from .memory import trim_heap

    trim_heap()


def _shares(pages: list[list[np.ndarray]]) -> list[float]:
    """Each page's share of the recogniser's work: its crops' widths at height 32."""
    work = [sum(32.0 * img.shape[1] / max(img.shape[0], 1) for img in page) for page in pages]
    total = sum(work)
    if total == 0:
        return [1.0 / len(pages)] * len(pages) if pages else []
    return [w / total for w in work]


def _model_name(model: Any) -> str:
    return str(getattr(model, "name", type(model).__name__))


def _as_lexicon(lexicon: "Lexicon | str | os.PathLike | Sequence[str] | None") -> "Lexicon | None":
    """A :class:`Lexicon` from a lexicon, a word-list file or a sequence of words."""
    from .recognition.decode import Lexicon

    if lexicon is None or isinstance(lexicon, Lexicon):
        return lexicon
    if isinstance(lexicon, (str, os.PathLike)):
        return Lexicon.from_file(Path(lexicon))
    return Lexicon(list(lexicon))
