"""Training loop for the CTPN detector (`scenetext train det`).

Synthetic scenes rendered on the fly (their line regions) are mixed with real photo folders;
each sample is a function of (seed, index), so a run resumed from ``last.pt`` continues exactly.
Checkpoints are written every few minutes, at the end and on Ctrl-C/SIGTERM; validation (ICDAR
2015 IoU protocol) runs periodically on a held-out slice of the real training photos and on any
folders given, printed as a table and appended to ``log.jsonl``.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from .. import checkpoint
from ..data.formats import DetSample, RecSample, read_det_set, read_rec_set, write_det_set
from ..detection.evaluate import evaluate_samples
from ..detection.model import CTPN, CTPNConfig, normalize
from ..detection.predictor import DEFAULT_SCALE, Detector
from ..nn import count_parameters
from .common import (
    CheckpointPolicy,
    StepSampler,
    StopSignal,
    add_counts,
    lr_at,
    split_holdout,
    training_checkpoint,
    worker_init,
)
from .det_data import AugmentConfig, DetDataset, DetSampleSource, collate
from .det_loss import LossConfig, ctpn_loss, distill_loss, hint_loss


@dataclass
class DetTrainConfig:
    out: str = "runs/det"
    steps: int = 60_000
    batch_size: int = 4
    lr: float = 1e-3
    warmup: int = 500
    weight_decay: float = 1e-4
    real: list[str] = field(default_factory=list)  # detection set folders (images/ + gt/)
    real_ratio: float = 0.3
    holdout: float = 0.05
    val: list[str] = field(default_factory=list)
    val_every: int = 2000
    val_limit: int | None = 100  # photos per validation set
    val_level: str = "word"
    val_scale: int = DEFAULT_SCALE
    log_every: int = 50
    seed: int = 0
    workers: int = 1
    threads: int = 2
    checkpoint_minutes: float = 5.0
    variant: str = "small"
    crop: tuple[int, int] = (480, 640)  # (height, width)
    short_side: tuple[int, int] = (400, 800)
    max_rotation: float = 5.0
    resume: bool = True
    init: str | None = None  # start from these weights (fine-tuning) instead of from scratch
    stop_at: int | None = None  # checkpoint and stop at this step (the LR schedule still follows `steps`)
    synth_level: str = "word"  # regions of synthetic scenes to train on: "word" or "line"
    hard_negatives: int = 0  # per image, mined among all background anchors (0: random sampling only)
    paste: list[str] = field(default_factory=list)  # word crop folders (labels.tsv) pasted into scenes
    paste_ratio: float = 0.5  # share of the synthetic samples that are pasted-crop scenes
    paste_holdout_scenes: int = 40  # scenes rendered from the held-out crops, for validation
    paste_margin: tuple[float, float] = (0.0, 0.0)  # seamless pasting: PasteStyle.margin range
    deadline: float | None = None  # checkpoint and stop once time.time() passes this
    teacher: str | None = None  # a trained detector whose outputs the model also learns (distillation)
    distill: float = 1.0  # weight of the distillation loss beside the detection loss
    hint: float = 0.0  # weight of the feature-map distillation loss (with a teacher)


def _print(msg: str) -> None:
    print(msg, flush=True)


def validate(model: CTPN, sets: dict[str, list[DetSample]], cfg: DetTrainConfig) -> dict[str, dict]:
    """ICDAR 2015 IoU scores of the model on each set (``###`` regions ignored)."""
    detector = Detector(model, scales=(cfg.val_scale,))
    results = {name: evaluate_samples(detector, samples, "iou", cfg.val_level) for name, samples in sets.items()}
    model.train()
    return results


def _print_table(step: int, results: dict[str, dict]) -> None:
    _print(f"validation at step {step}")
    _print(f"  {'set':<16}{'images':>7}{'P':>8}{'R':>8}{'H':>8}{'ms/img':>8}")
    for name, r in results.items():
        _print(f"  {name:<16}{r['n_images']:>7}{r['precision']:>8.4f}{r['recall']:>8.4f}{r['hmean']:>8.4f}"
               f"{r['ms_per_image']:>8.0f}")


def rendered_set(folder: Path, make_renderer, seeds: list[int]) -> list[DetSample]:
    """Scenes of ``make_renderer()`` (an object whose ``render(rng)`` gives image, word regions and
    line regions), one per seed, written once to ``folder`` (images/ + gt/) and read back: the same
    scenes for every validation, every resumed run and every later comparison."""
    if not (folder / "gt").is_dir() or len(list((folder / "gt").glob("*.txt"))) != len(seeds):
        renderer = make_renderer()
        (folder / "images").mkdir(parents=True, exist_ok=True)
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # no OpenCV thread pool before the data workers fork (it would deadlock them)
        try:
            for i, seed in enumerate(seeds):
                rgb, words, _ = renderer.render(random.Random(seed))
                image = folder / "images" / f"{i:04d}.png"
                cv2.imwrite(str(image), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                write_det_set(folder, [DetSample(image, words)])
        finally:
            cv2.setNumThreads(threads)
    return read_det_set(folder)


def paste_holdout_set(folder: Path, crops: list[RecSample], n: int, seed: int = 12345,
                      size: tuple[int, int] | None = None, margin: float = 0.0) -> list[DetSample]:
    """``n`` pasted-crop scenes made only of held-out crops (see :func:`rendered_set`), of the
    renderer's default size or ``size`` (width, height); ``margin`` > 0 pastes them seamlessly
    (``PasteStyle.margin``)."""
    from ..synth.render_pasted import PasteSceneRenderer, PasteStyle

    style = PasteStyle()
    if size is not None:
        style = replace(style, size=tuple(size))
    if margin:
        style = replace(style, margin=(margin, margin))
    seeds = [seed * 1_000_003 + i for i in range(n)]
    return rendered_set(folder, lambda: PasteSceneRenderer(crops, style=style), seeds)


def _paste_style(cfg: DetTrainConfig):
    from ..synth.render_pasted import PasteStyle

    return PasteStyle(margin=tuple(cfg.paste_margin))


def _val_sets(cfg: DetTrainConfig, holdout: list[DetSample],
              paste_holdout: list[DetSample] = ()) -> dict[str, list[DetSample]]:
    sets = {"holdout": holdout[: cfg.val_limit]} if holdout else {}
    if paste_holdout:
        sets["paste-holdout"] = list(paste_holdout)[: cfg.val_limit]
    for folder in cfg.val:
        sets[Path(folder).name] = read_det_set(folder)[: cfg.val_limit]
    return sets


def _train_step(model: CTPN, opt, batch, step: int, cfg: DetTrainConfig, skipped: dict, losses: list,
                teacher: CTPN | None = None) -> int:
    """One optimiser step on a batch (None when every sample was bad); returns the next step.
    With a ``teacher``, its outputs on the batch are a second target (:func:`distill_loss`)."""
    if batch is None:
        return step + 1
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg)
    x = normalize(batch["images"])
    hinted = teacher is not None and cfg.hint > 0
    outputs, features = model.forward_with_hints(x) if hinted else (model(x), None)
    terms = ctpn_loss(outputs, batch, LossConfig(hard_negatives=cfg.hard_negatives))
    if teacher is not None:
        with torch.no_grad():
            taught, taught_features = teacher.forward_with_hints(x) if hinted else (teacher(x), None)
        terms["distill"] = distill_loss(outputs, taught)
        terms["loss"] = terms["loss"] + cfg.distill * terms["distill"]
        if hinted:
            terms["hint"] = hint_loss(features, taught_features)
            terms["loss"] = terms["loss"] + cfg.hint * terms["hint"]
    if torch.isfinite(terms["loss"]):
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses.append({k: float(v.detach()) for k, v in terms.items()})
    else:
        skipped["non-finite loss"] = skipped.get("non-finite loss", 0) + 1
    return step + 1


def load_matching(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Copy into ``model`` the tensors of ``state_dict`` whose name and shape it shares (another
    variant's weights, for the layers the two have in common); returns how many were taken, of
    how many the model has."""
    own = model.state_dict()
    taken = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict({**own, **taken})
    return len(taken), len(own)


def train(cfg: DetTrainConfig, renderer_factory=None, real_samples: list[DetSample] | None = None,
          holdout_samples: list[DetSample] | None = None) -> Path:
    """Train (or resume) a detector; returns the path of ``last.pt``. ``renderer_factory``
    replaces the default :class:`~scenetext.synth.render_scenes.SceneRenderer`.
    ``real_samples`` and ``holdout_samples`` (photos already split, from any format) replace the
    photos of ``cfg.real`` and their held-out split."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.jsonl"

    state = checkpoint.load(last_path, kind="ctpn") if cfg.resume and last_path.is_file() else None
    model_cfg = CTPNConfig.from_dict(state["config"]) if state else CTPNConfig(variant=cfg.variant)
    torch.manual_seed(cfg.seed)
    model = CTPN(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best, skipped_total = 0, -1.0, {}
    if state is not None:
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["train"]["optimizer"])
        step, best = state["train"]["step"], state["train"]["best"]
        skipped_total = state["train"]["skipped"]
        torch.set_rng_state(state["train"]["torch_rng"])
        _print(f"resuming from {last_path} at step {step}")
    elif cfg.init:
        init = checkpoint.load(cfg.init, kind="ctpn")
        if CTPNConfig.from_dict(init["config"]).variant == model_cfg.variant:
            model.load_state_dict(init["state_dict"])
            _print(f"initialised from {cfg.init}")
        else:
            taken, total = load_matching(model, init["state_dict"])
            _print(f"initialised from {cfg.init}: {taken} of {total} tensors (the same names and shapes), "
                   "the others new")
    teacher = None
    if cfg.teacher:
        teacher = CTPN.from_checkpoint(checkpoint.load(cfg.teacher, kind="ctpn"))
        teacher.eval().requires_grad_(False)
        _print(f"distilling {cfg.teacher} (weight {cfg.distill})")
    model.train()
    _print(f"CTPN-{model_cfg.variant}: {count_parameters(model):,} parameters")

    if real_samples is not None:
        real_train, holdout = list(real_samples), list(holdout_samples or [])
    else:
        real = [sample for folder in cfg.real for sample in read_det_set(folder)]
        real_train, holdout = split_holdout(real, cfg.holdout)
    _print(f"real photos: {len(real_train)} for training, {len(holdout)} held out; real ratio {cfg.real_ratio}")
    if cfg.real_ratio < 1:  # synthetic scenes are rendered on the fly
        from ..synth.fonts import describe_fonts

        _print(describe_fonts())
    crops = [sample for folder in cfg.paste for sample in read_rec_set(folder)]
    paste_train, paste_held = split_holdout(crops, cfg.holdout)
    paste_val = []
    if crops:
        _print(f"word crops to paste: {len(paste_train)} for training, {len(paste_held)} held out; "
               f"paste ratio {cfg.paste_ratio}")
        if paste_held and cfg.paste_holdout_scenes:
            paste_val = paste_holdout_set(out / "paste_holdout", paste_held, cfg.paste_holdout_scenes)
    val_sets = _val_sets(cfg, holdout, paste_val)

    augment = AugmentConfig(crop=tuple(cfg.crop), short_side=tuple(cfg.short_side), max_rotation=cfg.max_rotation)
    source = DetSampleSource(real_train, cfg.real_ratio, cfg.seed, augment, heights=model_cfg.anchor_heights,
                             renderer_factory=renderer_factory, synth_level=cfg.synth_level,
                             paste_crops=paste_train, paste_ratio=cfg.paste_ratio,
                             paste_style=_paste_style(cfg))
    loader = torch.utils.data.DataLoader(
        DetDataset(source), batch_size=cfg.batch_size, sampler=StepSampler(step, cfg.steps, cfg.batch_size),
        num_workers=cfg.workers, collate_fn=collate, worker_init_fn=worker_init,
        prefetch_factor=2 if cfg.workers else None,
    )

    def save_checkpoint(path: Path, meta: dict | None = None) -> None:
        checkpoint.save(path, training_checkpoint("ctpn", model_cfg, model, opt, step, best, skipped_total, cfg, meta))

    window_start, losses = time.time(), []
    with StopSignal() as stop, open(log_path, "a") as log:
        policy = CheckpointPolicy(cfg.checkpoint_minutes, cfg.steps, cfg.stop_at, stop, cfg.deadline)
        for batch, skipped in loader:
            add_counts(skipped_total, skipped)
            step = _train_step(model, opt, batch, step, cfg, skipped_total, losses, teacher)
            if step % cfg.log_every == 0 and losses:
                mean = {k: float(np.mean([terms[k] for terms in losses])) for k in losses[0]}
                rate = len(losses) * cfg.batch_size / (time.time() - window_start)
                taught = "".join(f" {k} {mean[k]:.4f}" for k in ("distill", "hint") if k in mean)
                _print(f"step {step} loss {mean['loss']:.4f} (cls {mean['cls']:.4f} vertical {mean['vertical']:.4f} "
                       f"side {mean['side']:.4f}{taught}) lr {lr_at(step, cfg):.2e} {rate:.1f} images/s")
                log.write(json.dumps({"step": step, **mean, "lr": lr_at(step, cfg), "images_per_s": rate,
                                      "time": time.time()}) + "\n")
                log.flush()
                window_start, losses = time.time(), []
            if val_sets and (step % cfg.val_every == 0 or step >= cfg.steps):
                results = validate(model, val_sets, cfg)
                _print_table(step, results)
                log.write(json.dumps({"step": step, "val": results, "skipped": skipped_total,
                                      "time": time.time()}) + "\n")
                log.flush()
                held = [results[name]["hmean"] for name in ("holdout", "paste-holdout") if name in results]
                if held and float(np.mean(held)) > best:
                    best = float(np.mean(held))
                    save_checkpoint(best_path, {"holdout_hmean": best})
            if policy.after_step(step, lambda: save_checkpoint(last_path)):
                _print(f"stopped at step {step}; checkpoint {last_path}")
                break
    if skipped_total:
        _print("skipped samples: " + ", ".join(f"{k}: {v}" for k, v in sorted(skipped_total.items())))
    return last_path
