"""Fine-tuning on a user's own labelled data in one call (``scenetext finetune``).

The data are crop sets (a folder with ``labels.tsv``/``labels.txt``/``gt.txt``, or a recognition
label file) and photo sets (an ICDAR folder ``images/`` + ``gt/``, or a PaddleOCR detection
label file), recognised by :func:`detect_source`. A deterministic part of them is held out
(:func:`split_data`, photos before their words are cut, so no word of a held-out photo is trained
on); the recogniser trains on the crops and on the words cut from the photos
(:func:`~scenetext.data.word_crops.write_word_crops`, as the pipeline cuts them), the detector
on the photos.

Each model starts from the shipped one (or a given file, whose variant it keeps), on a schedule
sized to the data and the time budget (:func:`plan_schedule`: steps from a measured step time,
warm-up a small fraction of them), with synthetic words (and optionally crops of other sets,
``mix``) in the mix so it keeps reading what it could. The held-out part is scored before
training and periodically during it; the best weights (the starting ones included) are kept.

The recogniser is also kept from forgetting: a second held-out set of what it read before
(held-out ``mix`` crops, or else seeded synthetic words, never trained on: :func:`retain_set`)
is scored beside the user's, and only weights whose accuracy there stays within
``max_forgetting`` of the starting weights' can be kept. While it trains, the starting
recogniser's per-frame outputs on the batch's ``mix`` and synthetic samples are targets too
(``distill``: learning without forgetting), and the BatchNorms' running statistics are frozen
(:func:`tuning_mode`). When the run's best weights forget more, blends of
them with the starting weights (``(1 - a) * start + a * tuned``, :data:`BLENDS`) are scored too,
which often keep most of the gain and little of the loss.
The output folder is a model folder (:mod:`scenetext.shipped`): ``crnn.pt``/``ctpn.pt`` with
``manifest.json``, plus ``report.md`` (before/after table) and ``curve.png``.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..data.formats import (
    REC_LABEL_FILES,
    DetSample,
    FormatError,
    RecSample,
    read_det_set,
    read_paddle_det,
    read_rec_labels,
    read_rec_set,
)
from .common import split_holdout

#: Fewer labelled crops than this for training: the run says the data are few.
FEW_CROPS = 300
#: Fewer held-out crops than this: the run says its before/after figures are rough.
FEW_HELD_OUT = 50
#: Steps timed before the schedule is fixed (they are the first steps of the run).
CALIBRATION_STEPS = 8
#: Passes over the user's training crops at most (small sets would otherwise over-fit).
MAX_PASSES = 100
#: Held-out scorings of the recogniser during a run.
VALIDATIONS = 10
#: Share of the ``mix`` crops held out to measure forgetting: what ``scenetext train rec`` holds out.
RETAIN_FRACTION = 0.05
#: Fewer held-out ``mix`` crops than this: forgetting is measured on synthetic words instead.
MIN_RETAIN_REAL = 100
#: Synthetic words scored to measure forgetting where the ``mix`` crops are too few (:func:`retain_set`).
RETAIN_CROPS = 500
#: Shares of the fine-tuned weights in the blends with the starting ones tried after a run
#: whose best weights forget too much.
BLENDS = (0.75, 0.5, 0.25)


class DataError(ValueError):
    """DATA that ``finetune`` cannot use; the message is one line naming the path."""


@dataclass(frozen=True)
class DataSource:
    """One DATA argument: its path and kind (``crops``, ``icdar`` or ``paddle``)."""

    path: Path
    kind: str

    @property
    def photos(self) -> bool:
        return self.kind in ("icdar", "paddle")


@dataclass
class SplitData:
    """The data of a run, split: crops for the recogniser, photos for the detector."""

    rec_train: list[RecSample]
    rec_held: list[RecSample]
    det_train: list[DetSample] = field(default_factory=list)
    det_held: list[DetSample] = field(default_factory=list)
    widened: int = 0  # training crops too narrow for their label, widened when trained on
    warnings: list[str] = field(default_factory=list)


@dataclass
class RetainSet:
    """Held-out crops of what the recogniser read before fine-tuning, to measure forgetting."""

    name: str  # what they are, for the report
    images: list[np.ndarray]
    texts: list[str]


@dataclass(frozen=True)
class Schedule:
    """Learning-rate schedule of one model's run (what :func:`~scenetext.train.common.lr_at` reads)."""

    lr: float
    steps: int
    warmup: int
    batch_size: int
    val_every: int
    step_seconds: float = 0.0  # measured
    limited_by: str = "time"  # "time", "data" (MAX_PASSES) or "steps" (a given maximum)


@dataclass
class FinetuneConfig:
    data: list[str]
    out: str
    minutes: float = 30.0
    models: str | None = None  # "rec", "det" or "both"; None: both for photos, else rec
    init_rec: str | None = None  # default: the shipped recogniser
    init_det: str | None = None  # default: the shipped detector
    mix: list[str] = field(default_factory=list)  # crop sets kept in the mix (the original domain)
    real_ratio: float = 0.6  # share of the user's crops in the recogniser's samples
    mix_ratio: float = 0.25  # share of the `mix` crops (taken from the synthetic share)
    max_forgetting: float = 0.01  # largest accuracy drop allowed on the original domain's held-out crops
    # Weight of the KL divergence from the starting recogniser's per-frame outputs on the mix and
    # synthetic samples (learning without forgetting); 0 turns it off.
    distill: float = 1.0
    lr: float = 1e-4  # a third of the shipped recogniser's peak: larger steps cost it what it read before
    det_lr: float = 2e-4
    batch_size: int = 64
    det_batch_size: int = 4
    max_steps: int | None = None  # cap on steps per model (the schedule still fits the time)
    seed: int = 0
    workers: int = 1
    threads: int = 2
    renderer_factory: Callable | None = None  # synthetic words (default: the word renderer); picklable


@dataclass
class ModelRun:
    """What happened to one model: its schedule, curve and whether the new weights were kept."""

    role: str
    init: str
    schedule: Schedule | None = None
    steps_done: int = 0
    seconds: float = 0.0
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, held-out score)
    best_step: int = 0
    kept: bool = False  # False: nothing beat the starting weights, OUT holds those
    retain_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, original-domain accuracy)
    blend: float = 1.0  # share of the fine-tuned weights in the kept ones (< 1: a blend with the start)


@dataclass
class FinetuneReport:
    out: Path
    sources: list[DataSource]
    counts: dict[str, int]
    runs: list[ModelRun]
    before: dict[str, float]
    after: dict[str, float]
    warnings: list[str]
    seconds: float
    retain_name: str = ""  # what the forgetting check scored (RetainSet.name)
    max_forgetting: float = 0.0


# ------------------------------------------------------------------------------------ data

def detect_source(path: str | Path) -> DataSource:
    """The kind of a DATA argument, from its layout and first line; :class:`DataError` otherwise."""
    p = Path(path)
    if p.is_dir():
        if any((p / name).is_file() for name in REC_LABEL_FILES):
            return DataSource(p, "crops")
        if (p / "images").is_dir() and (p / "gt").is_dir():
            return DataSource(p, "icdar")
        raise DataError(f"{p}: not a data set: a crop set holds {'/'.join(REC_LABEL_FILES)}, a photo set "
                        "images/ and gt/ (ICDAR); or give a PaddleOCR or crop label file")
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder")
    try:
        with open(p, encoding="utf-8-sig") as f:
            first = next((line.strip() for line in f if line.strip()), "")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{p}: not a readable label file ({type(err).__name__})") from None
    _, tab, rest = first.partition("\t")
    if tab and rest.lstrip().startswith("["):
        return DataSource(p, "paddle")
    if first and (tab or " " in first):
        return DataSource(p, "crops")
    raise DataError(f"{p}: not a label file: expected 'image<TAB>text' lines (crops) or "
                    "'image<TAB>[{\"transcription\": ...}]' lines (PaddleOCR detection)")


def read_source(source: DataSource) -> list[RecSample] | list[DetSample]:
    """The samples of a source; format problems become a :class:`DataError` (file:line: problem)."""
    try:
        if source.kind == "crops":
            if source.path.is_dir():
                return read_rec_set(source.path)
            return read_rec_labels(source.path)
        if source.kind == "icdar":
            return read_det_set(source.path)
        return read_paddle_det(source.path)
    except FormatError as err:
        raise DataError(str(err).splitlines()[0]) from None


def holdout_fraction(n: int, target: int) -> float:
    """A fifth of the data held out, or less on large sets (about ``target`` items, at least 5 %)."""
    return 0.2 if n * 0.2 <= target else max(0.05, target / n)


def _split(samples: list, target: int) -> tuple[list, list]:
    train, held = split_holdout(samples, holdout_fraction(len(samples), target))
    if not held and len(train) >= 5:  # tiny sets: one item held out rather than none
        held = [train.pop()]
    return train, held


def split_data(sources: Sequence[DataSource], work: Path, charset=None) -> SplitData:
    """Read and split every source; the words of the photos are cut into ``work``."""
    from ..data.word_crops import write_word_crops

    crops: list[RecSample] = []
    photos: list[DetSample] = []
    for source in sources:
        samples = read_source(source)
        if not samples:
            raise DataError(f"{source.path}: holds no labelled samples")
        (photos if source.photos else crops).extend(samples)
    rec_train, rec_held = _split(crops, 200)
    det_train, det_held = _split(photos, 50)
    warnings = []
    if photos:
        for name, part in (("train", det_train), ("held", det_held)):
            report = write_word_crops(part, work / f"crops_{name}")
            (rec_train if name == "train" else rec_held).extend(report.samples)
            if report.unreadable_photos:
                warnings.append(f"{len(report.unreadable_photos)} photos could not be read: "
                                f"{report.unreadable_photos[0]}")
    data = SplitData(rec_train, rec_held, det_train, det_held, warnings=warnings)
    if charset is not None:
        data.widened = count_narrow(rec_train, charset)
    n = len(rec_train) + len(rec_held)
    if 0 < n < FEW_CROPS + FEW_HELD_OUT:
        data.warnings.append(f"little data: {n} labelled crops ({len(rec_train)} to train on, {len(rec_held)} "
                             f"held out); a few hundred give a steadier model and firmer figures")
    elif 0 < len(rec_held) < FEW_HELD_OUT:
        data.warnings.append(f"only {len(rec_held)} held-out crops: the before/after figures are rough")
    if photos and len(det_held) < 10:
        data.warnings.append(f"only {len(det_held)} held-out photos: the detection figures are rough")
    return data


def count_narrow(samples: Sequence[RecSample], charset) -> int:
    """How many crops are too narrow for their label under CTC (they are widened in training)."""
    from PIL import Image

    from .rec_data import needs_widening

    n = 0
    for s in samples:
        if not s.text or not charset.covers(s.text):
            continue
        try:
            with Image.open(s.image) as im:
                w, h = im.size
        except OSError:
            continue
        n += needs_widening(w, h, s.text, charset)
    return n


# -------------------------------------------------------------------------------- schedule

def plan_schedule(train_seconds: float, step_seconds: float, n_train: int, batch_size: int, lr: float,
                  real_ratio: float, max_steps: int | None = None) -> Schedule:
    """Steps that fit ``train_seconds`` at ``step_seconds`` each, no more than :data:`MAX_PASSES`
    over the ``n_train`` crops (at ``real_ratio`` of each batch) nor ``max_steps``; warm-up 5 %
    of the steps (at least the calibration steps), ten held-out scorings."""
    by_time = max(1, int(train_seconds / max(step_seconds, 1e-6)))
    by_data = max(CALIBRATION_STEPS, math.ceil(MAX_PASSES * n_train / max(1.0, batch_size * real_ratio)))
    options = {"time": by_time, "data": by_data}
    if max_steps is not None:
        options["steps"] = max_steps
    limited_by = min(options, key=options.get)
    steps = max(1, options[limited_by])
    warmup = min(steps, max(min(CALIBRATION_STEPS, steps), round(0.05 * steps)))
    return Schedule(lr=lr, steps=steps, warmup=warmup, batch_size=batch_size,
                    val_every=max(1, steps // VALIDATIONS), step_seconds=step_seconds, limited_by=limited_by)


def provisional_schedule(cfg: FinetuneConfig) -> Schedule:
    """The schedule of the calibration steps: the start of a warm-up 20 times as long, so they
    run at a small learning rate whatever schedule follows."""
    return Schedule(lr=cfg.lr, steps=40 * CALIBRATION_STEPS, warmup=20 * CALIBRATION_STEPS,
                    batch_size=cfg.batch_size, val_every=40 * CALIBRATION_STEPS)


# ------------------------------------------------------------------------------- progress

class Progress:
    """Where a run reports: notes (one line each) and a bar per phase. This one prints notes."""

    def note(self, message: str) -> None:
        print(message, flush=True)

    def start(self, description: str, total: int | None) -> None:
        pass

    def update(self, completed: int, total: int | None = None, **fields) -> None:
        pass

    def stop(self) -> None:
        pass


class Quiet(Progress):
    def note(self, message: str) -> None:
        pass


class RichProgress(Progress):
    """A rich progress bar with ETA on stderr; notes printed above it."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.console = Console(stderr=True)
        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console)
        self._task = None

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)

    def start(self, description: str, total: int | None) -> None:
        self.stop()
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, info="")

    def update(self, completed: int, total: int | None = None, **fields) -> None:
        if self._task is not None:
            info = " ".join(f"{k} {v}" for k, v in fields.items())
            self._bar.update(self._task, completed=completed, total=total, info=info)

    def stop(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None


# ------------------------------------------------------------------------------ evaluation

def _load_rgb(samples: Sequence[RecSample]) -> list[np.ndarray]:
    import cv2

    out = []
    for s in samples:
        bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        out.append(np.zeros((32, 32, 3), np.uint8) if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return out


def score_recogniser(recognizer, images, texts) -> dict[str, float]:
    from ..recognition.evaluate import evaluate_crops

    return evaluate_crops(recognizer, images, texts).to_dict()


def score_photos(det_path: Path | None, rec_path: Path | None, photos: Sequence[DetSample]) -> dict[str, float]:
    """Detection (ICDAR 2015 IoU, words) and end-to-end hmean of the pipeline on ``photos``."""
    from ..detection.predictor import Detector
    from ..evaluation.e2e import IGNORE_TEXT, evaluate_e2e
    from ..reader import Reader
    from ..recognition.predictor import Recognizer

    reader = Reader(detector=Detector.load(det_path).for_reading(), recognizer=Recognizer.load(rec_path),
                    bound_memory=False)
    pages = [reader.read(s.image) for s in photos]
    score = evaluate_e2e(
        [[r.points for r in s.regions] for s in photos],
        [[IGNORE_TEXT if r.ignore else r.text for r in s.regions] for s in photos],
        [[w.polygon for w in p.words] for p in pages],
        [[w.text for w in p.words] for p in pages],
    ).to_dict()
    return {"det_hmean": score["hmean"], "e2e_hmean": score["e2e_hmean"]}


def retain_set(mix: Sequence[RecSample], mix_names: Sequence[str], charset, seed: int,
               renderer_factory: Callable | None = None) -> tuple[list[RecSample], RetainSet]:
    """The ``mix`` crops to train on and the retain set that measures forgetting.

    The retain set is text the starting model reads but has never seen: the part of the ``mix``
    crops that ``scenetext train rec`` holds out (:data:`RETAIN_FRACTION`, by the same path hash,
    so for sets the starting model was trained on, the crops it was not), not trained on here
    either; crops it was trained on would measure what it memorised, which any update disturbs.
    With fewer than :data:`MIN_RETAIN_REAL` of those, it is :data:`RETAIN_CROPS` seeded synthetic
    words, drawn apart from the ones trained on (they follow real forgetting less closely), and
    the ``mix`` crops are all trained on. Texts ``charset`` cannot write are skipped."""
    if mix:
        train, held = split_holdout(mix, RETAIN_FRACTION)
        held = [s for s in held if charset.covers(s.text)]
        if len(held) >= MIN_RETAIN_REAL:
            return train, RetainSet(f"held-out crops of {', '.join(mix_names)}", _load_rgb(held),
                                    [s.text for s in held])
    from ..synth.datasets import LazyRenderer, word_renderer
    from .common import sample_rng

    renderer = LazyRenderer(renderer_factory or word_renderer).get()
    images, texts = [], []
    index = 0
    while len(images) < RETAIN_CROPS and index < 4 * RETAIN_CROPS:
        # A stream of its own: no training sample is drawn from these generators.
        image, text = renderer.render(sample_rng(seed, index, stream=7))
        index += 1
        if text and charset.covers(text):
            images.append(image)
            texts.append(text)
    return list(mix), RetainSet("synthetic words", images, texts)


@dataclass
class Candidate:
    """Weights scored on the held-out crops: their figures, state and step."""

    result: dict
    state: dict
    step: int


class KeepBest:
    """The best weights on the user's held-out crops among those that keep the original domain
    (``retain_accuracy`` no lower than the starting weights' less ``max_forgetting``: :attr:`best`),
    and the best of all, forgetting or not (:attr:`top`). Without ``retain_accuracy`` in the
    figures, every candidate keeps it."""

    def __init__(self, start: Candidate, max_forgetting: float):
        self.best = self.top = start
        self.floor = start.result["retain_accuracy"] - max_forgetting if "retain_accuracy" in start.result else None

    def keeps(self, result: dict) -> bool:
        return self.floor is None or result.get("retain_accuracy", 0.0) >= self.floor

    def wants(self, result: dict) -> bool:
        """Whether :meth:`offer` would take these figures (so their state is worth copying)."""
        key = _rec_score_key(result)
        return key > _rec_score_key(self.top.result) or (self.keeps(result) and key > _rec_score_key(self.best.result))

    def offer(self, candidate: Candidate) -> None:
        key = _rec_score_key(candidate.result)
        if key > _rec_score_key(self.top.result):
            self.top = candidate
        if self.keeps(candidate.result) and key > _rec_score_key(self.best.result):
            self.best = candidate

    @property
    def forgot(self) -> bool:
        """The best of all forgets more than allowed."""
        return self.top is not self.best


def blend_states(start: dict, tuned: dict, share: float) -> dict:
    """``(1 - share) * start + share * tuned`` for floating-point tensors; others from ``tuned``."""
    return {k: (start[k].float() * (1 - share) + v.float() * share).to(v.dtype) if v.is_floating_point() else v
            for k, v in tuned.items()}


# ----------------------------------------------------------------------------- recogniser

def _rec_score_key(result: dict) -> tuple:
    return (result["accuracy"], result["accuracy_case_sensitive"], result["one_minus_ned"])


def tuning_mode(model) -> None:
    """Put ``model`` in training mode with its BatchNorms' running statistics frozen.

    A fine-tuning batch is mostly the user's crops, so BatchNorm statistics updated on it would
    move towards that domain and shift every feature the model computes for the text it read
    before, even where its weights barely change; frozen, they stay the original training's
    (the BatchNorms' scales and shifts still learn)."""
    import torch

    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def finetune_recogniser(cfg: FinetuneConfig, init: Path, data: SplitData, seconds: float, out_file: Path,
                        progress: Progress, mix_samples: Sequence[RecSample] = (),
                        retain: RetainSet | None = None) -> ModelRun:
    """Train the recogniser of ``init`` on ``data`` for about ``seconds``; the best weights on the
    held-out crops (the starting ones included) whose accuracy on ``retain`` stays within
    ``cfg.max_forgetting`` of the start go to ``out_file``."""
    import torch

    from .. import checkpoint
    from ..nn import fold_batchnorm
    from ..recognition.model import CRNN
    from ..recognition.orientation import label_orientations
    from ..recognition.predictor import Recognizer
    from .common import StepSampler, StopSignal, lr_at, worker_init
    from .rec_data import BucketCollate, WordDataset, WordSampleSource
    from .recognizer import _train_step

    start = time.time()
    deadline = start + seconds
    run = ModelRun("recogniser", str(init))
    model = CRNN.load(init)
    charset = model.config.charset
    held_images, held_texts = _load_rgb(data.rec_held), [s.text for s in data.rec_held]

    def held_out_score() -> dict:
        recognizer = Recognizer(model, batch_size=128)
        result = score_recogniser(recognizer, held_images, held_texts)
        if retain is not None and retain.texts:
            result["retain_accuracy"] = score_recogniser(recognizer, retain.images, retain.texts)["accuracy"]
        tuning_mode(model)
        return result

    t0 = time.time()
    start_result = held_out_score()
    val_seconds = time.time() - t0
    start_state = copy.deepcopy(model.state_dict())
    keeper = KeepBest(Candidate(start_result, start_state, 0), cfg.max_forgetting)
    run.curve.append((0, start_result["accuracy"]))
    if "retain_accuracy" in start_result:
        run.retain_curve.append((0, start_result["retain_accuracy"]))
    orientations = label_orientations(model, charset, data.rec_train)
    tuning_mode(model)
    mix_ratio = cfg.mix_ratio if mix_samples else 0.0
    source = WordSampleSource(charset, data.rec_train, cfg.real_ratio, cfg.seed, orientations=orientations,
                              renderer_factory=cfg.renderer_factory, mix_samples=mix_samples, mix_ratio=mix_ratio)
    bucket = 4
    group = cfg.batch_size * bucket
    loader = torch.utils.data.DataLoader(
        WordDataset(source), batch_size=group, sampler=StepSampler(0, 10**9, group),
        num_workers=cfg.workers, collate_fn=BucketCollate(bucket), worker_init_fn=worker_init,
        prefetch_factor=2 if cfg.workers else None,
        # Workers are started afresh, not forked: this process has used OpenCV (cutting, scoring),
        # and a forked copy of its thread pool can deadlock them.
        multiprocessing_context="spawn" if cfg.workers else None,
    )
    teacher = fold_batchnorm(copy.deepcopy(model).eval()) if cfg.distill > 0 else None  # the start, frozen
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    schedule = provisional_schedule(cfg)
    step, skipped, losses = 0, {}, []
    timer, timed_from, t_loop = None, 0, time.time()
    progress.start("recogniser", None)
    with StopSignal() as stop:
        for batches, _skipped in loader:
            for batch in batches:
                step = _train_step(model, opt, batch, step, schedule, skipped, losses, teacher, cfg.distill,
                                   distill_original_only=True)
                if (run.schedule is not None and step >= schedule.steps) or time.time() >= deadline:
                    break
            if timer is None:
                timer, timed_from = time.time(), step  # the first group includes the workers' start
            if run.schedule is None and (step - timed_from >= CALIBRATION_STEPS or time.time() >= deadline
                                         or (cfg.max_steps is not None and step >= cfg.max_steps)):
                t_ref, s_ref = (timer, timed_from) if step > timed_from else (t_loop, 0)
                step_seconds = (time.time() - t_ref) / max(1, step - s_ref)
                left = deadline - time.time() - (VALIDATIONS + len(BLENDS)) * val_seconds
                schedule = run.schedule = plan_schedule(left + step * step_seconds, step_seconds, len(data.rec_train),
                                                        cfg.batch_size, cfg.lr, cfg.real_ratio, cfg.max_steps)
                progress.note(f"recogniser: {schedule.steps} steps of {cfg.batch_size} crops "
                              f"({step_seconds:.2f} s each, set by the {schedule.limited_by}), "
                              f"warm-up {schedule.warmup}, peak lr {schedule.lr:g}")
            done = run.schedule is not None and step >= schedule.steps
            out_of_time = time.time() >= deadline or stop.requested
            if run.schedule is not None and (step % schedule.val_every < bucket or done or out_of_time):
                result = held_out_score()
                run.curve.append((step, result["accuracy"]))
                if "retain_accuracy" in result:
                    run.retain_curve.append((step, result["retain_accuracy"]))
                if keeper.wants(result):
                    keeper.offer(Candidate(result, copy.deepcopy(model.state_dict()), step))
            progress.update(step, schedule.steps if run.schedule else None,
                            loss=f"{np.mean(losses[-20:]):.3f}" if losses else "-",
                            lr=f"{lr_at(step, schedule):.1e}",
                            held_out=f"{run.curve[-1][1]:.3f}")
            if done or out_of_time:
                break
    progress.stop()
    if stop.requested:
        progress.note("stopped on request; keeping the best weights so far")
    if run.schedule is None:  # the budget ran out before the calibration steps
        run.schedule = schedule
    if keeper.forgot:  # the best weights forget too much: try blends with the start
        top = keeper.top
        for share in BLENDS:
            model.load_state_dict(blend_states(start_state, top.state, share))
            result = held_out_score()
            if keeper.keeps(result) and keeper.wants(result):
                keeper.offer(Candidate(result, copy.deepcopy(model.state_dict()), top.step))
                run.blend = share
                break  # the largest share that keeps within the limit
        if run.blend < 1.0:
            progress.note(f"recogniser: its best weights forgot more than {cfg.max_forgetting:.3f} of "
                          f"{retain.name}; keeping {run.blend:g} of them blended with the starting weights")
    run.best_step = keeper.best.step
    run.steps_done, run.seconds, run.kept = step, time.time() - start, keeper.best.state is not start_state
    model.load_state_dict(keeper.best.state)
    meta = {"finetune": {"init": str(init), "step": run.best_step, "blend": run.blend,
                         "held_out_accuracy": keeper.best.result["accuracy"]}}
    checkpoint.save(out_file, {"kind": "crnn", "config": model.config.to_dict(),
                               "state_dict": {k: v.half() if v.is_floating_point() else v
                                              for k, v in model.state_dict().items()}, "meta": meta})
    if skipped:
        progress.note("skipped samples: " + ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())))
    return run


# ------------------------------------------------------------------------------- detector

def _det_step_seconds(init: Path, cfg: FinetuneConfig, crop: tuple[int, int]) -> float:
    """Seconds of one detector training step (forward and backward of a batch), measured."""
    import torch

    from .. import checkpoint
    from ..detection.model import CTPN

    model = CTPN.from_checkpoint(checkpoint.load(init, kind="ctpn"))
    x = torch.zeros(cfg.det_batch_size, 3, *crop)
    times = []
    for _ in range(2):
        t = time.time()
        out = model(x)
        sum(v.float().mean() for v in out.values() if isinstance(v, torch.Tensor)).backward()
        times.append(time.time() - t)
    return min(times) * 1.3  # the loss, its targets and the optimiser step


def finetune_detector(cfg: FinetuneConfig, init: Path, data: SplitData, seconds: float, work: Path,
                      out_file: Path, progress: Progress) -> ModelRun:
    """Train the detector of ``init`` on the photos for about ``seconds`` (the detector's training
    loop, stopped by a deadline); its best weights on the held-out photos go to ``out_file``, with
    the settings stored in ``init``."""
    from .. import checkpoint
    from .detector import DetTrainConfig
    from .detector import train as det_train

    start = time.time()
    run = ModelRun("detector", str(init))
    crop = (480, 640)
    step_seconds = _det_step_seconds(init, cfg, crop)
    schedule = run.schedule = plan_schedule(seconds - (time.time() - start), step_seconds, 10**9,
                                            cfg.det_batch_size, cfg.det_lr, 1.0, cfg.max_steps)
    progress.note(f"detector: {schedule.steps} steps of {cfg.det_batch_size} photos (about {step_seconds:.1f} s "
                  f"each), warm-up {schedule.warmup}, peak lr {schedule.lr:g}")
    det_cfg = DetTrainConfig(out=str(work / "det"), steps=schedule.steps, batch_size=cfg.det_batch_size,
                             lr=schedule.lr, warmup=schedule.warmup, real_ratio=0.6, val_every=schedule.val_every,
                             # in this process: its loop forks data workers, which OpenCV's
                             # thread pool, started here by the cutting and scoring, could deadlock
                             val_limit=50, seed=cfg.seed, workers=0, threads=cfg.threads,
                             checkpoint_minutes=1e9, init=str(init), resume=False, crop=crop,
                             deadline=start + seconds)
    last = det_train(det_cfg, real_samples=data.det_train, holdout_samples=data.det_held)
    best = last.parent / "best.pt"
    chosen = checkpoint.load(best if best.is_file() else last, kind="ctpn")
    run.steps_done = int(checkpoint.load(last, kind="ctpn")["meta"]["step"])
    run.best_step = int(chosen["meta"]["step"])
    for line in (last.parent / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "val" in record and "holdout" in record["val"]:
            run.curve.append((record["step"], record["val"]["holdout"]["hmean"]))
    settings = checkpoint.load(init, kind="ctpn").get("meta", {}).get("settings", {})
    meta = {"settings": settings, "finetune": {"init": str(init), "step": run.best_step}}
    checkpoint.save(out_file, {"kind": "ctpn", "config": chosen["config"],
                               "state_dict": {k: v.half() if v.is_floating_point() else v
                                              for k, v in chosen["state_dict"].items()}, "meta": meta})
    run.seconds, run.kept = time.time() - start, True
    return run


# ------------------------------------------------------------------------------------ run

def resolve_models(choice: str | None, sources: Sequence[DataSource]) -> tuple[bool, bool]:
    """(train the recogniser, train the detector) for ``--models``; the detector needs photos."""
    photos = any(s.photos for s in sources)
    choice = choice or ("both" if photos else "rec")
    if choice not in ("rec", "det", "both"):
        raise ValueError(f"models must be rec, det or both, got {choice!r}")
    if choice != "rec" and not photos:
        raise DataError(f"--models {choice} needs photos (an ICDAR folder or a PaddleOCR detection label file)")
    return choice in ("rec", "both"), choice in ("det", "both")


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: exists and is not an empty folder (finetune never overwrites; give a new OUT)")


def finetune(cfg: FinetuneConfig, progress: Progress | None = None) -> FinetuneReport:
    """Fine-tune on ``cfg.data`` within about ``cfg.minutes``; writes ``cfg.out`` and returns the report.

    With ``cfg.workers`` > 0 the recogniser's data workers are spawned processes, so a script
    calling this needs the usual ``if __name__ == "__main__":`` guard."""
    import torch

    from .. import shipped
    from ..recognition.model import CRNN

    progress = progress or Progress()
    start = time.time()
    budget = cfg.minutes * 60.0
    out = Path(cfg.out)
    sources = [detect_source(p) for p in cfg.data]
    do_rec, do_det = resolve_models(cfg.models, sources)
    _check_out(out)
    init_rec = Path(cfg.init_rec) if cfg.init_rec else shipped.role_path("recogniser")
    init_det = Path(cfg.init_det) if cfg.init_det else shipped.role_path("detector")
    mix = [s for folder in cfg.mix for s in read_source(DataSource(Path(folder), "crops"))]
    torch.set_num_threads(cfg.threads)
    charset = CRNN.load(init_rec).config.charset
    with tempfile.TemporaryDirectory(prefix="scenetext-finetune-") as tmp:
        work = Path(tmp)
        data = split_data(sources, work, charset)
        for warning in data.warnings:
            progress.note(f"warning: {warning}")
        mix, retain = retain_set(mix, [Path(folder).name for folder in cfg.mix], charset, cfg.seed,
                                 cfg.renderer_factory) if do_rec else (mix, None)
        counts = {"crops_train": len(data.rec_train), "crops_held_out": len(data.rec_held),
                  "photos_train": len(data.det_train), "photos_held_out": len(data.det_held),
                  "crops_widened": data.widened, "mix_crops": len(mix),
                  "retain_crops": len(retain.texts) if retain else 0}
        progress.note("data: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items() if v))
        if do_rec and (not data.rec_train or not data.rec_held):
            raise DataError("too little data: the recogniser needs at least 5 labelled crops")
        if do_det and (not data.det_train or not data.det_held):
            raise DataError("too little data: the detector needs at least 5 labelled photos")
        scored = time.time()
        before = _score_all(data, init_det if data.det_held else None, init_rec, retain)
        progress.note("before: " + figures_line(before))
        out.mkdir(parents=True, exist_ok=True)
        reserve = (time.time() - scored) * 1.2 + 5.0  # the final scoring costs about what the first did
        left = budget - (time.time() - start) - reserve
        runs = []
        rec_file, det_file = out / "crnn.pt", out / "ctpn.pt"
        if do_det:
            share = left * (0.5 if do_rec else 1.0)
            runs.append(finetune_detector(cfg, init_det, data, share, work, det_file, progress))
            left = budget - (time.time() - start) - reserve
        if do_rec:
            runs.append(finetune_recogniser(cfg, init_rec, data, left, rec_file, progress, mix, retain))
        after = _score_all(data, det_file if do_det else init_det if data.det_held else None,
                           rec_file if do_rec else init_rec, retain)
        _keep_better(runs, before, after, rec_file, det_file, init_rec, init_det)
        if any(not r.kept for r in runs):
            after = _score_all(data, det_file if do_det else init_det if data.det_held else None,
                               rec_file if do_rec else init_rec, retain)
    figures = {}
    if do_rec:
        figures["crnn"] = {"held-out accuracy": round(after["accuracy"], 4),
                           "held-out accuracy before": round(before["accuracy"], 4)}
    if do_det:
        figures["ctpn"] = {"held-out det hmean": round(after["det_hmean"], 4),
                           "held-out det hmean before": round(before["det_hmean"], 4)}
    kept = {r.role: r.kept for r in runs}
    descriptions = {"crnn": f"recogniser fine-tuned from {init_rec.name}" if kept.get("recogniser")
                    else f"{init_rec.name} as it was (fine-tuning did not beat it on the held-out part)",
                    "ctpn": f"detector fine-tuned from {init_det.name}" if kept.get("detector")
                    else f"{init_det.name} as it was (fine-tuning did not beat it on the held-out part)"}
    shipped.refresh_manifest(out, figures=figures, descriptions=descriptions)
    report = FinetuneReport(out, sources, counts, runs, before, after, data.warnings, time.time() - start,
                            retain.name if retain else "", cfg.max_forgetting)
    draw_curve(runs, out / "curve.png")
    write_report(report, out / "report.md")
    return report


def _score_all(data: SplitData, det_path: Path | None, rec_path: Path,
               retain: RetainSet | None = None) -> dict[str, float]:
    from ..recognition.predictor import Recognizer

    recognizer = Recognizer.load(rec_path, batch_size=128)
    figures = score_recogniser(recognizer, _load_rgb(data.rec_held), [s.text for s in data.rec_held]) \
        if data.rec_held else {}
    if retain is not None and retain.texts:
        figures["retain_accuracy"] = score_recogniser(recognizer, retain.images, retain.texts)["accuracy"]
    if det_path is not None and data.det_held:
        figures.update(score_photos(det_path, rec_path, data.det_held))
    return figures


def _keep_better(runs: list[ModelRun], before: dict, after: dict, rec_file: Path, det_file: Path,
                 init_rec: Path, init_det: Path) -> None:
    """Put the starting weights back where the fine-tuned ones score lower on the held-out part."""
    for run in runs:
        if run.role == "recogniser" and _rec_score_key(after) < _rec_score_key(before):
            run.kept = False
        if run.role == "detector" and (after["det_hmean"], after["e2e_hmean"]) < (before["det_hmean"],
                                                                                  before["e2e_hmean"]):
            run.kept = False
        if not run.kept:
            src, dst = (init_rec, rec_file) if run.role == "recogniser" else (init_det, det_file)
            shutil.copyfile(src, dst)


# ------------------------------------------------------------------------------- outputs

_FIGURE_NAMES = {"accuracy": "word accuracy", "accuracy_case_sensitive": "word accuracy (case-sensitive)",
                 "one_minus_ned": "1 - NED", "det_hmean": "detection hmean (IoU, words)",
                 "e2e_hmean": "end-to-end hmean", "retain_accuracy": "original domain: word accuracy"}


def figures_line(figures: dict[str, float]) -> str:
    return ", ".join(f"{_FIGURE_NAMES[k]} {figures[k]:.4f}" for k in _FIGURE_NAMES if k in figures)


def write_report(report: FinetuneReport, path: Path) -> None:
    from ..imageio import atomic_write_text

    c = report.counts
    lines = ["# Fine-tuning report", ""]
    lines += ["Data: " + ", ".join(f"`{s.path}` ({s.kind})" for s in report.sources) + ".", ""]
    lines += [f"- crops: {c['crops_train']} to train on, {c['crops_held_out']} held out"
              + (f" ({c['crops_widened']} training crops too narrow for their label under CTC, widened)"
                 if c["crops_widened"] else "")]
    if c["photos_train"] or c["photos_held_out"]:
        lines += [f"- photos: {c['photos_train']} to train on, {c['photos_held_out']} held out "
                  "(their words are cut into the crops above)"]
    if c["mix_crops"]:
        lines += [f"- crops of other sets kept in the mix: {c['mix_crops']}"]
    if c.get("retain_crops"):
        lines += [f"- forgetting check (\"original domain\" below): {c['retain_crops']} {report.retain_name}, "
                  "never trained on"]
    for warning in report.warnings:
        lines += [f"- **warning**: {warning}"]
    lines += ["", "## Held-out part, before and after", "", "| figure | before | after | change |", "|---|---:|---:|---:|"]
    for key, name in _FIGURE_NAMES.items():
        if key in report.before and key in report.after:
            b, a = report.before[key], report.after[key]
            lines += [f"| {name} | {b:.4f} | {a:.4f} | {a - b:+.4f} |"]
    n = c["crops_held_out"]
    lines += ["", f"Word accuracy is scored by the standard protocol (case and punctuation ignored) on {n} held-out "
              "crops; case-sensitive compares the exact text."
              + (f" Only weights whose original-domain accuracy stays within {report.max_forgetting:.3f} of the "
                 "starting weights' could be kept." if c.get("retain_crops") else ""), "", "## Runs", ""]
    for run in report.runs:
        s = run.schedule
        lines += [f"- **{run.role}** from `{run.init}`: {run.steps_done} steps in {run.seconds / 60:.1f} min"
                  + (f" (schedule {s.steps} steps set by the {s.limited_by}, warm-up {s.warmup}, peak lr {s.lr:g}, "
                     f"batch {s.batch_size})" if s else "")
                  + (f"; best on the held-out part at step {run.best_step}"
                     + (f", blended {run.blend:g} with the starting weights to keep the original domain"
                        if run.blend < 1.0 else "") if run.kept else
                     "; the fine-tuned weights did not beat the starting ones, which the folder holds instead")]
    lines += ["", f"Total time {report.seconds / 60:.1f} min. Held-out score over the run: `curve.png`.", "",
              "Use the models: `scenetext run --models " + str(report.out) + " PHOTOS...` or "
              f"`Reader(models=\"{report.out}\")` (roles this folder lacks use the shipped models).", ""]
    atomic_write_text(path, "\n".join(lines))


def draw_curve(runs: Sequence[ModelRun], path: Path, size: tuple[int, int] = (720, 400)) -> None:
    """Held-out score against training step, one panel per model, drawn with Pillow."""
    from PIL import Image, ImageDraw

    runs = [r for r in runs if r.curve] or list(runs)
    w, h = size
    panel_h = h // max(1, len(runs))
    image = Image.new("RGB", (w, panel_h * max(1, len(runs))), "white")
    draw = ImageDraw.Draw(image)
    colours = {"recogniser": (31, 119, 180), "detector": (214, 39, 40)}
    for i, run in enumerate(runs):
        top = i * panel_h
        x0, x1, y0, y1 = 60, w - 20, top + 30, top + panel_h - 30
        draw.rectangle([x0, y0, x1, y1], outline=(120, 120, 120))
        metric = "word accuracy" if run.role == "recogniser" else "detection hmean"
        draw.text((x0, top + 8), f"{run.role}: held-out {metric} by step", fill="black")
        if not run.curve:
            continue
        steps = [s for s, _ in run.curve]
        values = [v for _, v in run.curve + run.retain_curve]
        lo, hi = max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.05)
        hi = max(hi, lo + 0.01)
        span = max(1, max(steps))

        def xy(step, value):
            return x0 + (x1 - x0) * step / span, y1 - (y1 - y0) * (value - lo) / (hi - lo)

        for frac in (0.0, 0.5, 1.0):
            value = lo + frac * (hi - lo)
            draw.text((8, xy(0, value)[1] - 6), f"{value:.2f}", fill=(90, 90, 90))
        draw.text((x1 - 60, y1 + 6), f"step {max(steps)}", fill=(90, 90, 90))
        base = xy(0, values[0])[1]
        for x in range(x0, x1, 8):  # the starting score, dashed
            draw.line([(x, base), (min(x + 4, x1), base)], fill=(150, 150, 150))
        for curve, colour in ((run.retain_curve, (44, 160, 44)), (run.curve, colours.get(run.role, (0, 0, 0)))):
            points = [xy(s, v) for s, v in curve]
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
            for px, py in points:
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        if run.retain_curve:
            draw.text((x0 + 260, top + 8), "green: original domain", fill=(44, 160, 44))
    image.save(path)


def report_dict(report: FinetuneReport) -> dict:
    """The report as plain JSON-able values."""
    return {"out": str(report.out), "sources": [{"path": str(s.path), "kind": s.kind} for s in report.sources],
            "counts": report.counts, "before": report.before, "after": report.after, "warnings": report.warnings,
            "seconds": report.seconds,
            "runs": [{**asdict(r), "schedule": asdict(r.schedule) if r.schedule else None} for r in report.runs]}
