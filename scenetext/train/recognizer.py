"""Training loop for the CRNN recogniser (`scenetext train rec`).

Synthetic words (rendered on the fly, or read from pre-rendered corpora) are mixed with real
crop folders; each sample is a function of (seed, index), so a run resumed from a checkpoint
continues exactly. Checkpoints are written every few minutes, at the end and on Ctrl-C/SIGTERM;
validation runs periodically on a held-out slice of the real training crops and on any folders
given, printed and appended to a JSONL log.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import checkpoint
from ..data.formats import read_rec_set
from ..nn import count_parameters, fold_batchnorm
from ..recognition.charset import Charset
from ..recognition.evaluate import evaluate_crops
from ..recognition.model import CRNN, CRNNConfig
from ..recognition.predictor import Recognizer
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
from .corpus import ShardedCorpus, open_corpora
from .rec_data import BucketCollate, WordDataset, WordSampleSource
from .shrink import distill_loss, shrink_into


@dataclass
class RecTrainConfig:
    out: str = "runs/rec"
    steps: int = 100_000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 500
    weight_decay: float = 1e-4
    real: list[str] = field(default_factory=list)
    real_ratio: float = 0.4
    # Pre-rendered synthetic corpora (scenetext synth words): a corpus_ratio share of the
    # synthetic samples is read from their shards, the rest rendered on the fly.
    corpus: list[str] = field(default_factory=list)
    corpus_ratio: float = 1.0
    holdout: float = 0.05
    val: list[str] = field(default_factory=list)
    val_every: int = 1000
    val_limit: int | None = None
    seed: int = 0
    workers: int = 1
    threads: int = 2
    checkpoint_minutes: float = 5.0
    bucket: int = 4  # batches rendered together and cut by width
    # Model size; None: the variant of the --init file (same size, weights copied), else "small".
    # A variant smaller than the --init file's starts from its most important channels.
    variant: str | None = None
    charset_file: str | None = None
    resume: bool = True
    stop_at: int | None = None  # checkpoint and stop at this step (the LR schedule still follows `steps`)
    init: str | None = None  # start from these weights (fine-tuning) instead of from scratch
    # Train to match this model's per-frame outputs too (distillation): loss = CTC + distill * KL.
    teacher: str | None = None
    distill: float = 1.0
    # Turn tall real crops (words running up or down) upright, each in the orientation where the
    # --init model finds its label most likely; fixed once per run in OUT/orientations.json.
    orient_tall: bool = True


def _print(msg: str, log=None):
    print(msg, flush=True)


def validate(model: CRNN, sets: dict[str, tuple]) -> dict[str, dict]:
    model.eval()
    rec = Recognizer(model, batch_size=128)
    results = {}
    for name, (images, texts) in sets.items():
        results[name] = evaluate_crops(rec, images, texts, name=name).to_dict()
    model.train()
    return results


def _load_val_sets(cfg: RecTrainConfig, holdout_samples) -> dict[str, tuple]:
    import cv2

    sets = {}
    if holdout_samples:
        imgs = [cv2.cvtColor(cv2.imread(str(s.image)), cv2.COLOR_BGR2RGB) for s in holdout_samples]
        sets["holdout"] = (imgs, [s.text for s in holdout_samples])
    for folder in cfg.val:
        from ..recognition.evaluate import load_crops

        images, texts, _ = load_crops(folder, cfg.val_limit)
        sets[Path(folder).name] = (images, texts)
    return sets


def train(cfg: RecTrainConfig) -> Path:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.jsonl"
    corpus = _open_corpus(cfg)  # a corpus that cannot be read stops the run before any work

    state = None
    if cfg.resume and last_path.is_file():
        state = checkpoint.load(last_path, kind="crnn")
        model_cfg = CRNNConfig.from_dict(state["config"])
        _print(f"resuming from {last_path} at step {state['train']['step']}")
    else:
        model_cfg = _model_config(cfg)
    torch.manual_seed(cfg.seed)
    model = CRNN(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best, skipped_total = 0, -1.0, {}
    if state is not None:
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["train"]["optimizer"])
        step, best = state["train"]["step"], state["train"].get("best", -1.0)
        skipped_total = state["train"].get("skipped", {})
        torch.set_rng_state(state["train"]["torch_rng"])
    init = None
    if state is None and cfg.init:
        init = CRNN.load(cfg.init)
        if init.config.variant == model_cfg.variant:
            model.load_state_dict(init.state_dict())
            _print(f"initialised from {cfg.init}")
        else:
            shrink_into(model, init)
            _print(f"initialised from the most important channels of {cfg.init} ({init.config.variant})")
    teacher = CRNN.load(cfg.teacher).eval() if cfg.teacher else None
    if teacher is not None:
        fold_batchnorm(teacher)
        _print(f"distilling from {cfg.teacher} ({teacher.config.variant}), weight {cfg.distill}")
    model.train()
    _print(f"CRNN-{model_cfg.variant}: {count_parameters(model):,} parameters, {len(model_cfg.chars)} characters")

    real = [s for folder in cfg.real for s in read_rec_set(folder)]
    real_train, holdout = split_holdout(real, cfg.holdout)
    _print(f"real crops: {len(real_train)} for training, {len(holdout)} held out; real ratio {cfg.real_ratio}")
    if cfg.real_ratio < 1 and (corpus is None or cfg.corpus_ratio < 1):  # words are rendered on the fly
        from ..synth.fonts import describe_fonts

        _print(describe_fonts())
    val_sets = _load_val_sets(cfg, holdout)
    # Tall crops are judged by trained weights (a freshly shrunk model has not yet learnt to read).
    judge = teacher if teacher is not None else (init if init is not None else model)
    orientations = _orientations(cfg, out / "orientations.json", judge, model_cfg, real_train, fresh=state is None)

    if step % cfg.bucket:
        raise ValueError(f"checkpoint step {step} is not a multiple of bucket={cfg.bucket}")
    source = WordSampleSource(model_cfg.charset, real_train, cfg.real_ratio, cfg.seed, orientations=orientations,
                              corpus=corpus, corpus_ratio=cfg.corpus_ratio)
    group = cfg.batch_size * cfg.bucket
    loader = torch.utils.data.DataLoader(
        WordDataset(source), batch_size=group,
        sampler=StepSampler(step // cfg.bucket, -(-cfg.steps // cfg.bucket), group),
        num_workers=cfg.workers, collate_fn=BucketCollate(cfg.bucket), worker_init_fn=worker_init,
        prefetch_factor=2 if cfg.workers else None,
    )

    def save_checkpoint(path: Path, meta: dict | None = None) -> None:
        checkpoint.save(path, training_checkpoint("crnn", model_cfg, model, opt, step, best, skipped_total, cfg, meta))

    t_window, n_window, loss_window = time.time(), 0, []
    with StopSignal() as stop, open(log_path, "a") as log:
        policy = CheckpointPolicy(cfg.checkpoint_minutes, cfg.steps, cfg.stop_at, stop)
        for batches, skipped in loader:
            add_counts(skipped_total, skipped)
            for batch in batches:
                step = _train_step(model, opt, batch, step, cfg, skipped_total, loss_window, teacher)
                n_window += batch[0].shape[0] if batch is not None else 0
            if step % 100 < cfg.bucket:
                rate = n_window / (time.time() - t_window)
                _print(f"step {step} loss {np.mean(loss_window):.3f} lr {lr_at(step, cfg):.2e} {rate:.0f} samples/s")
                log.write(json.dumps({"step": step, "loss": float(np.mean(loss_window)), "lr": lr_at(step, cfg),
                                      "samples_per_s": rate, "time": time.time()}) + "\n")
                log.flush()
                t_window, n_window, loss_window = time.time(), 0, []
            if step % cfg.val_every < cfg.bucket or step >= cfg.steps:
                results = validate(model, val_sets)
                _print_table(step, results)
                log.write(json.dumps({"step": step, "val": results, "skipped": skipped_total, "time": time.time()}) + "\n")
                log.flush()
                if "holdout" in results and results["holdout"]["accuracy"] > best:
                    best = results["holdout"]["accuracy"]
                    save_checkpoint(best_path, {"holdout_accuracy": best})
            if policy.after_step(step, lambda: save_checkpoint(last_path)):
                _print(f"stopped at step {step}; checkpoint {last_path}")
                break
    if skipped_total:
        _print("skipped samples: " + ", ".join(f"{k}: {v}" for k, v in sorted(skipped_total.items())))
    return last_path


def _open_corpus(cfg: RecTrainConfig) -> ShardedCorpus | None:
    """The --corpus folders as one shuffled stream (None without any)."""
    if not cfg.corpus:
        return None
    shards, infos = open_corpora(cfg.corpus)
    for info in infos:
        state = "" if info.complete else " (still being written: the shards finished so far)"
        _print(f"corpus {info.folder}: {info.crops:,} crops in {info.shards} shards{state}")
    if cfg.corpus_ratio < 1.0:
        _print(f"synthetic samples: {cfg.corpus_ratio:.0%} read from the corpus, the others rendered on the fly")
    return ShardedCorpus(shards, cfg.seed)


def _model_config(cfg: RecTrainConfig) -> CRNNConfig:
    """The model a new run trains: ``cfg.variant``, else the variant of the ``cfg.init`` file,
    else ``small``; the characters of ``cfg.charset_file``, else the init file's, else the default."""
    init_cfg = CRNNConfig.from_dict(checkpoint.load(cfg.init, kind="crnn")["config"]) if cfg.init else None
    variant = cfg.variant or (init_cfg.variant if init_cfg else "small")
    if cfg.charset_file:
        chars = Charset.from_file(cfg.charset_file).chars
    else:
        chars = init_cfg.chars if init_cfg else CRNNConfig().chars
    return CRNNConfig(variant=variant, chars=chars)


def _orientations(cfg: RecTrainConfig, path: Path, model: CRNN, model_cfg: CRNNConfig, samples,
                  fresh: bool) -> dict[str, int]:
    """Rotations for tall training crops: read back from `path` (so a resumed run keeps them), or,
    for a new run started from --init weights, chosen by those weights and written to `path`.
    A run from scratch has no model to judge with and keeps every crop as it is."""
    if path.is_file():
        return json.loads(path.read_text())
    if not (fresh and cfg.init and cfg.orient_tall):
        return {}
    from ..recognition.orientation import label_orientations

    chosen = label_orientations(model, model_cfg.charset, samples)
    path.write_text(json.dumps(chosen, indent=0, sort_keys=True))
    turned = sum(1 for d in chosen.values() if d)
    _print(f"tall crops: {len(chosen)}, {turned} turned upright for training ({path})")
    return chosen


def _train_step(model, opt, batch, step, cfg, skipped_total, loss_window, teacher=None,
                distill: float | None = None, distill_original_only: bool = False) -> int:
    """One optimiser step on a batch (a :class:`~scenetext.train.rec_data.WordBatch`, None when
    every sample was bad); returns the next step.

    With a ``teacher`` the loss adds ``distill`` (default ``cfg.distill``) times the KL divergence
    from its per-frame outputs: on every sample, or with ``distill_original_only`` only on the
    batch's ``original`` ones (what a fine-tuned model should keep reading as it did)."""
    if batch is None:
        return step + 1
    for g in opt.param_groups:
        g["lr"] = lr_at(step, cfg)
    log_probs = model(batch.x, batch.widths)
    frames = model.frames(batch.widths)
    loss = F.ctc_loss(log_probs, batch.targets, frames, batch.target_lengths, blank=0, reduction="mean",
                      zero_infinity=True)
    if teacher is not None:
        weight = cfg.distill if distill is None else distill
        if not distill_original_only:
            with torch.no_grad():
                teacher_log_probs = teacher(batch.x, batch.widths)
            loss = loss + weight * distill_loss(log_probs, teacher_log_probs, frames)
        elif batch.original.any():
            keep = batch.original
            with torch.no_grad():
                teacher_log_probs = teacher(batch.x[keep], batch.widths[keep])
            loss = loss + weight * distill_loss(log_probs[:, keep], teacher_log_probs, frames[keep])
    if torch.isfinite(loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        loss_window.append(float(loss.detach()))
    else:
        skipped_total["non-finite loss"] = skipped_total.get("non-finite loss", 0) + 1
    return step + 1


def _print_table(step: int, results: dict[str, dict]):
    _print(f"validation at step {step}")
    _print(f"  {'set':<16}{'n':>6}{'acc':>8}{'acc(case)':>11}{'1-NED':>8}{'crops/s':>9}")
    for name, r in results.items():
        _print(f"  {name:<16}{r['n']:>6}{r['accuracy']:>8.4f}{r['accuracy_case_sensitive']:>11.4f}"
               f"{r['one_minus_ned']:>8.4f}{r['crops_per_second']:>9.0f}")
