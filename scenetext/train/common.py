"""Pieces shared by the recogniser and detector training loops.

Every training sample is a pure function of (seed, index) and a step consumes a fixed range of
indices, so a run resumed from a checkpoint continues exactly where it stopped.
"""

from __future__ import annotations

import math
import random
import signal
import time
import zlib
from dataclasses import asdict
from pathlib import Path


def sample_rng(seed: int, index: int, stream: int = 0) -> random.Random:
    return random.Random((seed * 1_000_003 + index) * 7 + stream)


def split_holdout(samples, fraction: float):
    """Deterministic train/held-out split by a hash of each image path (stable across runs)."""
    train, held = [], []
    for s in samples:
        h = zlib.crc32(str(Path(s.image).name).encode() + str(Path(s.image).parent.parent.name).encode())
        (held if (h % 10_000) < fraction * 10_000 else train).append(s)
    return train, held


class StepSampler:
    """Indices start*batch ... end*batch in order, so resuming at a step replays nothing."""

    def __init__(self, start_step: int, end_step: int, batch_size: int):
        self.start, self.end, self.bs = start_step, end_step, batch_size

    def __iter__(self):
        return iter(range(self.start * self.bs, self.end * self.bs))

    def __len__(self):
        return (self.end - self.start) * self.bs


def worker_init(_worker_id: int) -> None:
    """One thread per data worker: the model's threads get the cores. Workers ignore Ctrl-C and
    SIGTERM: the main process catches them, writes a checkpoint and shuts the workers down."""
    import cv2
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def lr_at(step: int, cfg) -> float:
    """Linear warm-up over `cfg.warmup` steps, then cosine decay to 2 % of `cfg.lr` at `cfg.steps`."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


class StopSignal:
    """Turns SIGINT/SIGTERM into a flag so the loop can checkpoint and exit cleanly."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def add_counts(total: dict[str, int], counts: dict[str, int]) -> None:
    """Accumulate skipped-sample counts by reason."""
    for reason, n in counts.items():
        total[reason] = total.get(reason, 0) + n


def training_checkpoint(kind: str, model_cfg, model, opt, step: int, best: float, skipped: dict, train_cfg,
                        meta: dict | None = None) -> dict:
    """The dict written to last.pt / best.pt: a loadable model file plus what resuming needs."""
    import torch

    return {
        "kind": kind, "config": model_cfg.to_dict(), "state_dict": model.state_dict(),
        "meta": {"step": step, "train_config": asdict(train_cfg), **(meta or {})},
        "train": {"step": step, "optimizer": opt.state_dict(), "best": best, "skipped": skipped,
                  "torch_rng": torch.get_rng_state()},
    }


class CheckpointPolicy:
    """When a loop writes last.pt: every `minutes`, at the last step, and when asked to stop (a
    signal, `stop_at` reached, or the wall clock past `deadline`, a ``time.time()`` value).
    `after_step` saves when due and says whether to stop."""

    def __init__(self, minutes: float, steps: int, stop_at: int | None, stop: StopSignal,
                 deadline: float | None = None):
        self.minutes, self.steps, self.stop_at, self.stop = minutes, steps, stop_at, stop
        self.deadline = deadline
        self.last = time.time()

    def after_step(self, step: int, save) -> bool:
        stopping = (self.stop.requested or (self.stop_at is not None and step >= self.stop_at)
                    or (self.deadline is not None and time.time() >= self.deadline))
        if stopping or time.time() - self.last > self.minutes * 60 or step >= self.steps:
            save()
            self.last = time.time()
        return stopping
