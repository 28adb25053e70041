"""Training of the word splitter (`scenetext train split`).

Samples mix two sources:

- synthetic lines drawn on the fly (:class:`~scenetext.synth.render_lines.LineSpanRenderer`);
- the detector's own boxes (``level="word"``, before any split) on training photos and scenes,
  cropped as the splitter reads them and labelled per frame from the ground-truth words: a frame
  inside a word's span (the word mapped into the crop, if it covers at least half the crop's
  rows) is 1, inside a ``###`` region it is ignored, anything else is 0. Sets with line-level
  ground truth (MSRA-TD500) give only negatives: boxes that touch no line. These crops are built
  once per run (``real_crops.pt`` in the run folder) from detection folders, from scenes of
  pasted real word crops and from synthetic font scenes; 5 % of the photos and word crops (by
  path hash, as in detector training) are kept out and give the validation crops.

The network is a CRNN with two output classes (:mod:`.splitter`), best initialised from a
trained recogniser's convolutions and LSTMs (``--init weights/crnn-fast.pt``: it has learnt to
see characters already). Loss: per-frame cross-entropy. Checkpoints every few minutes, on
Ctrl-C and at the end; resuming continues exactly (samples are a function of seed and index).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .. import checkpoint
from ..crop import LineCrop
from ..data.formats import DetSample, read_det_set, read_rec_set
from ..detection.splitter import read_crop
from ..evaluation.iou import _intersection_areas, polygons
from ..imageio import load_image
from ..nn import count_parameters
from ..recognition.model import CRNN, CRNNConfig
from ..recognition.preprocess import pad_batch, prepare_crop, target_width
from ..synth.render_lines import FRAME, LineSpanRenderer, frame_labels
from .common import (
    CheckpointPolicy,
    StepSampler,
    StopSignal,
    lr_at,
    sample_rng,
    split_holdout,
    training_checkpoint,
    worker_init,
)


@dataclass
class SplitTrainConfig:
    out: str = "runs/split"
    steps: int = 4000
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 1e-4
    variant: str = "fast"
    init: str | None = None  # a CRNN file whose convolutions and LSTMs start the network
    words: list[str] = field(default_factory=list)  # detection folders with word-level ground truth
    negatives: list[str] = field(default_factory=list)  # detection folders with line-level ground truth
    paste: list[str] = field(default_factory=list)  # word-crop folders, pasted into scenes
    paste_scenes: int = 300
    font_scenes: int = 300
    detector: str | None = None  # detector weights whose boxes are cropped (default: shipped)
    real_ratio: float = 0.5
    holdout: float = 0.05
    val_every: int = 500
    log_every: int = 50
    seed: int = 0
    workers: int = 1
    threads: int = 1
    checkpoint_minutes: float = 4.0
    resume: bool = True
    stop_at: int | None = None


def _print(msg: str) -> None:
    print(msg, flush=True)


def box_labels(crop: LineCrop, regions, width: int) -> np.ndarray:
    """Per-frame labels (1 word, 0 not, -1 ignored) of a crop resized to ``width`` columns, from
    ground-truth regions (objects with ``points`` and ``ignore``) in image pixels."""
    to_crop = np.linalg.inv(crop.to_image)
    h, w = crop.image.shape[:2]
    fx = width / w
    words, ignored = [], []
    for region in regions:
        pts = cv2.perspectiveTransform(np.asarray(region.points, np.float64).reshape(-1, 1, 2), to_crop).reshape(-1, 2)
        y0, y1 = pts[:, 1].min(), pts[:, 1].max()
        overlap = min(y1, h) - max(y0, 0)
        if overlap < 0.5 * min(y1 - y0, h):
            continue
        (ignored if region.ignore else words).append((pts[:, 0].min() * fx, pts[:, 0].max() * fx))
    labels = frame_labels(words, width)
    unsure = (frame_labels(ignored, width) == 1) & (labels == 0)
    labels[unsure] = -1
    return labels


def _touches(quad: np.ndarray, regions) -> bool:
    if not regions:
        return False
    inter = _intersection_areas(polygons([quad]), polygons([r.points for r in regions]))
    return bool((inter > 0).any())


def detector_crops(detector, samples: list[DetSample], words_level: bool, images=None) -> list[tuple]:
    """(RGB crop at height 32, labels) for the detector's unsplit word boxes on each sample.
    ``images`` (parallel to ``samples``) are used instead of loading the sample files."""
    out = []
    for k, sample in enumerate(samples):
        rgb = images[k] if images is not None else load_image(sample.image)
        for found in detector.detect(rgb, level="word"):
            quad = found.quad
            crop = read_crop(rgb, quad)
            if crop is None:
                continue
            frames = target_width(crop.image.shape[1], crop.image.shape[0]) // FRAME
            if words_level:
                labels = box_labels(crop, sample.regions, frames * FRAME)
            elif _touches(quad, sample.regions):
                continue
            else:
                labels = np.zeros(frames, np.int64)
            out.append((crop.image, labels))
    return out


def _save_crops(path: Path, real: dict[str, list[tuple]]) -> None:
    """The run's detector crops as plain tensors (read back with ``weights_only=True``)."""
    from .. import checkpoint

    checkpoint.save(path, {split: [[torch.from_numpy(np.ascontiguousarray(img)), torch.from_numpy(labels)]
                                   for img, labels in items] for split, items in real.items()})


def _load_crops(path: Path) -> dict[str, list[tuple]]:
    obj = torch.load(path, map_location="cpu", weights_only=True)  # tensors and lists only: nothing runs
    return {split: [(img.numpy(), labels.numpy()) for img, labels in items] for split, items in obj.items()}


def _scenes(renderer, n: int, seed: int):
    """``n`` rendered scenes: their images and samples holding their word regions."""
    images, samples = [], []
    for i in range(n):
        rgb, words, _ = renderer.render(random.Random(seed * 1_000_003 + i))
        images.append(rgb)
        samples.append(DetSample(Path(f"scene-{i}"), words))
    return images, samples


def build_real_crops(cfg: SplitTrainConfig) -> dict[str, list[tuple]]:
    """The run's detector crops: ``{"train": [...], "val": [...]}`` (see module notes)."""
    from ..detection.predictor import Detector

    detector = Detector.load(cfg.detector, word_split=None)
    data: dict[str, list[tuple]] = {"train": [], "val": []}
    for folders, words_level in ((cfg.words, True), (cfg.negatives, False)):
        for folder in folders:
            train, held = split_holdout(read_det_set(folder), cfg.holdout)
            data["train"] += detector_crops(detector, train, words_level)
            data["val"] += detector_crops(detector, held, words_level)
            _print(f"{folder}: {len(data['train'])} training crops, {len(data['val'])} validation crops so far")
    crops = [s for folder in cfg.paste for s in read_rec_set(folder)]
    if crops and cfg.paste_scenes:
        from ..synth.render_pasted import PasteSceneRenderer

        train, held = split_holdout(crops, cfg.holdout)
        for part, pool, n, seed in (("train", train, cfg.paste_scenes, cfg.seed + 101),
                                    ("val", held, max(1, cfg.paste_scenes // 10), cfg.seed + 202)):
            images, samples = _scenes(PasteSceneRenderer(pool), n, seed)
            data[part] += detector_crops(detector, samples, True, images)
        _print(f"pasted scenes: {len(data['train'])} training crops, {len(data['val'])} validation crops so far")
    if cfg.font_scenes:
        from ..synth.render_scenes import SceneRenderer

        renderer = SceneRenderer()
        for part, n, seed in (("train", cfg.font_scenes, cfg.seed + 303), ("val", max(1, cfg.font_scenes // 10),
                                                                             cfg.seed + 404)):
            images, samples = _scenes(renderer, n, seed)
            data[part] += detector_crops(detector, samples, True, images)
        _print(f"font scenes: {len(data['train'])} training crops, {len(data['val'])} validation crops")
    return data


def prepared(image: np.ndarray, labels: np.ndarray):
    """A crop as the network reads it and its labels cut or padded (-1) to its frames."""
    x = prepare_crop(image)
    n = x.shape[1] // FRAME
    labels = np.asarray(labels[:n], np.int64)
    if len(labels) < n:
        labels = np.pad(labels, (0, n - len(labels)), constant_values=-1)
    return x, labels


class SplitDataset(torch.utils.data.Dataset):
    """Sample ``index`` -> (prepared crop (32, W) float32, labels (W/4,) int64)."""

    def __init__(self, real: list[tuple], real_ratio: float, seed: int, max_width: int = 384):
        self.real, self.real_ratio, self.seed, self.max_width = real, real_ratio, seed, max_width
        self._renderer = None

    def __len__(self):
        return 1 << 62

    def __getitem__(self, index: int):
        rng = sample_rng(self.seed, index)
        if self.real and rng.random() < self.real_ratio:
            image, labels = self.real[rng.randrange(len(self.real))]
        else:
            if self._renderer is None:
                self._renderer = LineSpanRenderer()
            image, labels = self._renderer.render(rng)
        x, labels = prepared(image, labels)
        if x.shape[1] > self.max_width:  # a random window of a long line (compute per step stays bounded)
            start = rng.randrange((x.shape[1] - self.max_width) // FRAME + 1)
            x = x[:, start * FRAME: start * FRAME + self.max_width]
            labels = labels[start: start + self.max_width // FRAME]
        return x, labels


def collate(items):
    x, widths = pad_batch([x for x, _ in items])
    frames = x.shape[-1] // FRAME
    labels = torch.full((len(items), frames), -1, dtype=torch.long)
    for i, (_, lab) in enumerate(items):
        labels[i, : len(lab)] = torch.from_numpy(lab)
    return x, widths, labels


#: Class weights of the loss (not a word, word): frames between and around words are fewer than
#: frames inside them and are what the splitter is for.
CLASS_WEIGHTS = (2.0, 1.0)


def frame_loss(model: CRNN, x, widths, labels) -> torch.Tensor:
    log_probs = model(x, widths)  # (T, B, 2)
    return torch.nn.functional.nll_loss(log_probs.permute(1, 2, 0), labels[:, : log_probs.shape[0]],
                                        weight=torch.tensor(CLASS_WEIGHTS), ignore_index=-1)


@torch.no_grad()
def evaluate_crops(model: CRNN, crops: list[tuple], batch: int = 64) -> dict[str, float]:
    """Frame accuracy and word-frame precision / recall / F on labelled crops."""
    model.eval()
    tp = fp = fn = correct = total = 0
    for i in range(0, len(crops), batch):
        items = [prepared(*crops[j]) for j in range(i, min(i + batch, len(crops)))]
        x, widths, labels = collate(items)
        pred = model(x, widths).argmax(-1).T  # (B, T)
        lab = labels[:, : pred.shape[1]]
        valid = lab >= 0
        correct += int(((pred == lab) & valid).sum())
        total += int(valid.sum())
        tp += int(((pred == 1) & (lab == 1)).sum())
        fp += int(((pred == 1) & (lab == 0)).sum())
        fn += int(((pred == 0) & (lab == 1)).sum())
    model.train()
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"accuracy": correct / max(total, 1), "precision": p, "recall": r, "f": 2 * p * r / max(p + r, 1e-9)}


def _init_from(model: CRNN, path: str) -> None:
    """Start ``model`` from a recogniser file (all but its output layer) or a word-splitter file
    (all of it: fine-tuning a shipped splitter on new data)."""
    state = checkpoint.load(path)
    if state.get("kind") not in ("crnn", "wordsplit"):
        raise ValueError(f"{path}: holds a {state.get('kind')!r} model, expected a CRNN or a word splitter")
    if CRNNConfig.from_dict(state["config"]).variant != model.config.variant:
        raise ValueError(f"{path}: a {state['config'].get('variant')!r} CRNN cannot start a {model.config.variant!r} splitter")
    own = model.state_dict()
    kept = {k: v for k, v in state["state_dict"].items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(kept, strict=False)
    _print(f"initialised {len(kept)} of {len(own)} tensors from {path}")


def train(cfg: SplitTrainConfig) -> Path:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    last_path, best_path, log_path, crops_path = out / "last.pt", out / "best.pt", out / "log.jsonl", out / "real_crops.pt"
    state = checkpoint.load(last_path, kind="wordsplit") if cfg.resume and last_path.is_file() else None
    model_cfg = CRNNConfig.from_dict(state["config"]) if state else CRNNConfig(variant=cfg.variant, classes=2)
    torch.manual_seed(cfg.seed)
    model = CRNN(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best = 0, -1.0
    if state is not None:
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["train"]["optimizer"])
        step, best = state["train"]["step"], state["train"]["best"]
        torch.set_rng_state(state["train"]["torch_rng"])
        _print(f"resuming from {last_path} at step {step}")
    elif cfg.init:
        _init_from(model, cfg.init)
    _print(f"word splitter CRNN-{model_cfg.variant}: {count_parameters(model):,} parameters")

    if crops_path.is_file():
        real = _load_crops(crops_path)
    else:
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # no OpenCV pool before the data workers fork
        try:
            real = build_real_crops(cfg)
        finally:
            cv2.setNumThreads(threads)
        _save_crops(crops_path, real)
    _print(f"detector crops: {len(real['train'])} for training, {len(real['val'])} for validation; "
           f"real ratio {cfg.real_ratio}")
    if cfg.real_ratio < 1:  # synthetic lines are rendered on the fly
        from ..synth.fonts import describe_fonts

        _print(describe_fonts())

    loader = torch.utils.data.DataLoader(
        SplitDataset(real["train"], cfg.real_ratio, cfg.seed), batch_size=cfg.batch_size,
        sampler=StepSampler(step, cfg.steps, cfg.batch_size), num_workers=cfg.workers, collate_fn=collate,
        worker_init_fn=worker_init, prefetch_factor=2 if cfg.workers else None)

    def save(path: Path, meta: dict | None = None) -> None:
        checkpoint.save(path, training_checkpoint("wordsplit", model_cfg, model, opt, step, best, {}, cfg, meta))

    model.train()
    window, losses = time.time(), []
    with StopSignal() as stop, open(log_path, "a") as log:
        policy = CheckpointPolicy(cfg.checkpoint_minutes, cfg.steps, cfg.stop_at, stop)
        for x, widths, labels in loader:
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
            loss = frame_loss(model, x, widths, labels)
            if torch.isfinite(loss):
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                losses.append(float(loss.detach()))
            step += 1
            if step % cfg.log_every == 0 and losses:
                rate = len(losses) * cfg.batch_size / (time.time() - window)
                _print(f"step {step} loss {np.mean(losses):.4f} lr {lr_at(step, cfg):.2e} {rate:.0f} crops/s")
                log.write(json.dumps({"step": step, "loss": float(np.mean(losses)), "lr": lr_at(step, cfg),
                                      "time": time.time()}) + "\n")
                log.flush()
                window, losses = time.time(), []
            if real["val"] and (step % cfg.val_every == 0 or step >= cfg.steps):
                scores = evaluate_crops(model, real["val"])
                _print(f"validation at step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
                log.write(json.dumps({"step": step, "val": scores, "time": time.time()}) + "\n")
                log.flush()
                if scores["f"] > best:
                    best = scores["f"]
                    save(best_path, {"val": scores})
            if policy.after_step(step, lambda: save(last_path)):
                _print(f"stopped at step {step}; checkpoint {last_path}")
                break
    return last_path
