"""Training data for the recogniser: synthetic words (rendered on the fly, or read from
pre-rendered corpora) mixed with real crop folders.

Every sample is a pure function of (seed, index), so runs are reproducible, DataLoader workers
need no coordination, and resuming at step s continues with exactly the samples of step s.
Crops too narrow for their label under CTC at height 32 are widened (:func:`widen_for_label`).
Bad samples (unreadable images, characters outside the charset, labels too long even for the
widest training crop) come back as a reason string instead of a sample; the collate function
counts and drops them.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import cv2
import numpy as np

from ..recognition.charset import Charset
from ..recognition.orientation import rotate
from ..recognition.preprocess import FRAME_STRIDE, min_frames, pad_batch, prepare_crop
from ..synth.datasets import LazyRenderer, word_renderer
from ..synth.render_text import degrade, homography
from .common import sample_rng

MAX_TRAIN_WIDTH = 512


class WordItem(NamedTuple):
    """One prepared training sample."""

    image: np.ndarray  # float32 (32, W) in [-1, 1] (prepare_crop), widened for the label
    ids: list[int]  # label ids
    original: bool  # not one of ``real_samples``: a ``mix`` crop or a synthetic word


class WordBatch(NamedTuple):
    """A padded batch of :class:`WordItem` (what :class:`BucketCollate` yields)."""

    x: "torch.Tensor"  # noqa: F821  (B, 1, 32, W)
    widths: "torch.Tensor"  # noqa: F821  (B,) crop widths before padding
    targets: "torch.Tensor"  # noqa: F821  concatenated label ids
    target_lengths: "torch.Tensor"  # noqa: F821  (B,)
    original: "torch.Tensor"  # noqa: F821  (B,) bool: WordItem.original


def augment_real(rng: random.Random, img: np.ndarray) -> np.ndarray:
    """Capture-like degradations of a real crop: perspective and rotation, a curved baseline,
    loose and tight crops, partial occlusion, inversion, then blur, low resolution, noise and
    JPEG (:func:`~scenetext.synth.render_text.degrade`)."""
    h, w = img.shape[:2]
    if rng.random() < 0.5:
        rot = 8.0 if rng.random() < 0.3 else 3.0
        H = homography(rng, w, h, rot=rot, shear=0.2, persp=0.08)
        T = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]])
        img = cv2.warpPerspective(img, T @ H, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.15:
        img = curve(rng, img)
    if rng.random() < 0.6:  # loose or tight crop: up to 8 % off or 15 % added on each side
        pads = [int(rng.uniform(-0.08, 0.15) * s) for s in (h, h, w, w)]
        t, b, l, r = pads
        img = cv2.copyMakeBorder(img, max(t, 0), max(b, 0), max(l, 0), max(r, 0), cv2.BORDER_REPLICATE)
        hh, ww = img.shape[:2]
        img = img[max(-t, 0) : hh - max(-b, 0), max(-l, 0) : ww - max(-r, 0)]
    if rng.random() < 0.1:
        img = occlude(rng, img)
    if rng.random() < 0.2:
        img = 255 - img
    return degrade(rng, img, strength=0.8)


def curve(rng: random.Random, img: np.ndarray) -> np.ndarray:
    """Bend the baseline along an arc: each column moves up or down by up to a fifth of the height."""
    h, w = img.shape[:2]
    amp = rng.uniform(-0.2, 0.2) * h
    xs = np.arange(w, dtype=np.float32)
    shift = amp * (1 - (2 * xs / max(w - 1, 1) - 1) ** 2)  # a parabola, 0 at both ends
    map_x = np.tile(xs, (h, 1))
    map_y = np.arange(h, dtype=np.float32)[:, None] - shift[None, :]
    return cv2.remap(img, map_x, map_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def occlude(rng: random.Random, img: np.ndarray) -> np.ndarray:
    """Cover a thin band across the top or bottom edge (a cable, a frame, a shadow), never the
    middle of the word, so the label stays readable."""
    h, w = img.shape[:2]
    out = img.copy()
    band = max(1, int(rng.uniform(0.08, 0.2) * h))
    colour = out.reshape(-1, out.shape[-1])[rng.randrange(h * w)] if out.ndim == 3 else out.flat[rng.randrange(h * w)]
    x0 = rng.randrange(max(1, w // 2))
    x1 = min(w, x0 + int(rng.uniform(0.3, 1.0) * w))
    if rng.random() < 0.5:
        out[:band, x0:x1] = colour
    else:
        out[h - band :, x0:x1] = colour
    return out


def widen_for_label(arr: np.ndarray, ids: list[int], max_width: int = MAX_TRAIN_WIDTH) -> np.ndarray | None:
    """A prepared crop ``(H, W)`` padded left and right (its edge columns repeated) to the width
    its label needs under CTC (:func:`~scenetext.recognition.preprocess.min_frames` frames of
    ``FRAME_STRIDE`` pixels); unchanged when wide enough, ``None`` when the label needs more
    than ``max_width`` pixels."""
    need = min_frames(ids) * FRAME_STRIDE
    if arr.shape[1] >= need:
        return arr
    if need > max_width:
        return None
    extra = need - arr.shape[1]
    return np.pad(arr, ((0, 0), (extra // 2, extra - extra // 2)), mode="edge")


def needs_widening(width: int, height: int, text: str, charset: Charset) -> bool:
    """Whether a ``width`` x ``height`` crop labelled ``text`` is too narrow for CTC at the
    recogniser's height (what :func:`widen_for_label` fixes)."""
    from ..recognition.preprocess import target_width

    ids = charset.encode(text)
    return target_width(width, height, max_width=MAX_TRAIN_WIDTH) // FRAME_STRIDE < min_frames(ids)


class WordSampleSource:
    """Produces (prepared crop, label ids) for a global sample index.

    A sample is a real crop with probability ``real_ratio``, else one of ``mix_samples`` (crops
    of other sets kept in the mix so a fine-tuned model still reads them) with probability
    ``mix_ratio``, else a synthetic word: read from ``corpus`` (a
    :class:`~scenetext.train.corpus.ShardedCorpus` of pre-rendered crops) with probability
    ``corpus_ratio`` when one is given, else rendered on the spot."""

    def __init__(self, charset: Charset, real_samples=(), real_ratio: float = 0.5, seed: int = 0,
                 renderer_factory=None, augment: bool = True, orientations: dict[str, int] | None = None,
                 mix_samples=(), mix_ratio: float = 0.0, corpus=None, corpus_ratio: float = 1.0):
        self.charset = charset
        # image path -> degrees clockwise that turn a tall real crop's word upright (orientation.py)
        self.orientations = orientations or {}
        self.real = list(real_samples)
        self.real_ratio = real_ratio if self.real else 0.0
        self.mix = list(mix_samples)
        self.mix_ratio = mix_ratio if self.mix else 0.0
        self.seed = seed
        self.augment = augment
        self.corpus = corpus
        self.corpus_ratio = corpus_ratio if corpus is not None else 0.0
        self._renderer = LazyRenderer(renderer_factory or word_renderer)

    @property
    def renderer(self):
        return self._renderer.get()

    def raw(self, index: int):
        """(RGB image, text, origin) or (None, reason, origin); origin is ``"real"`` (one of
        ``real_samples``), ``"mix"`` or ``"synthetic"``."""
        rng = sample_rng(self.seed, index)
        draw = rng.random()
        if draw < self.real_ratio + self.mix_ratio:
            origin = "real" if draw < self.real_ratio else "mix"
            pool = self.real if origin == "real" else self.mix
            s = pool[rng.randrange(len(pool))]
            bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
            if bgr is None:
                return None, "unreadable image", origin
            img = rotate(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.orientations.get(str(s.image), 0))
            if self.augment:
                img = augment_real(rng, img)
            return img, s.text, origin
        if self.corpus_ratio >= 1.0 or (self.corpus_ratio > 0.0 and rng.random() < self.corpus_ratio):
            img, text = self.corpus.get(index)
            return img, text, "synthetic"
        img, text = self.renderer.render(rng)
        return img, text, "synthetic"

    def __call__(self, index: int) -> WordItem | str:
        img, text, origin = self.raw(index)
        if img is None:
            return text
        if not text or not self.charset.covers(text):
            return "characters outside the charset" if text else "empty label"
        ids = self.charset.encode(text)
        arr = widen_for_label(prepare_crop(img, max_width=MAX_TRAIN_WIDTH), ids)
        if arr is None:
            return "label too long for the crop"
        return WordItem(arr, ids, origin != "real")


class WordDataset:
    """Map-style torch dataset over global indices of a WordSampleSource."""

    def __init__(self, source: WordSampleSource):
        self.source = source

    def __len__(self):
        return 2**62

    def __getitem__(self, index: int):
        try:
            return self.source(index)
        except Exception as e:  # a broken font or file must not stop training
            return f"error: {type(e).__name__}"


class BucketCollate:
    """Collate a group of `n_batches` batches: drop bad samples (counting reasons), sort the rest
    by width and cut them into `n_batches` padded batches, so a batch holds crops of similar
    width and little compute goes to padding."""

    def __init__(self, n_batches: int = 1):
        self.n_batches = n_batches

    def __call__(self, items):
        good = sorted((it for it in items if not isinstance(it, str)), key=lambda g: g.image.shape[1])
        skipped: dict[str, int] = {}
        for it in items:
            if isinstance(it, str):
                skipped[it] = skipped.get(it, 0) + 1
        per = -(-len(items) // self.n_batches)
        batches = [_pad(good[i : i + per]) for i in range(0, per * self.n_batches, per)]
        return batches, skipped


def _pad(good: list[WordItem]) -> WordBatch | None:
    if not good:
        return None
    import torch

    x, widths = pad_batch([g.image for g in good])
    targets = torch.tensor([i for g in good for i in g.ids], dtype=torch.long)
    target_lengths = torch.tensor([len(g.ids) for g in good], dtype=torch.long)
    return WordBatch(x, widths, targets, target_lengths, torch.tensor([g.original for g in good], dtype=torch.bool))
