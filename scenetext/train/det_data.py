"""Training data for the detector: synthetic scenes rendered on the fly mixed with real photos.

Every sample is a pure function of (seed, index): resuming at step s replays exactly the samples
of step s, and DataLoader workers need no coordination. Each sample goes through one affine warp
(random scale to a short side in ``short_side``, a small rotation, a random crop or pad to the
fixed ``crop`` size, polygons moved by the same matrix), colour jitter and blur, then becomes
CTPN targets. Failures (an unreadable photo, a broken font) come back as a reason string; the
collate function counts and drops them.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..data.formats import DetSample, RecSample, Region
from ..detection.anchors import ANCHOR_HEIGHTS
from ..detection.model import MEAN
from ..imageio import load_image
from ..synth.datasets import LazyRenderer, pasted_scene_renderer, scene_renderer
from .common import sample_rng
from .det_targets import TargetConfig, Targets, build_targets

PAD_COLOR = tuple(round(255 * m) for m in MEAN)  # normalises to ~0, like the model's own padding


@dataclass
class AugmentConfig:
    crop: tuple[int, int] = (480, 640)  # (height, width) of every training image
    short_side: tuple[int, int] = (400, 800)
    max_rotation: float = 5.0  # degrees
    jitter_prob: float = 0.8
    gray_prob: float = 0.1
    blur_prob: float = 0.2


def geometry(rng: random.Random, size: tuple[int, int], cfg: AugmentConfig) -> np.ndarray:
    """A 2x3 affine: scale to a random short side, rotate about the centre, crop to ``cfg.crop``
    at a random offset (or place a smaller image at a random offset inside it)."""
    h, w = size
    scale = rng.uniform(*cfg.short_side) / min(h, w)
    angle = rng.uniform(-cfg.max_rotation, cfg.max_rotation)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += [w * scale / 2 - w / 2, h * scale / 2 - h / 2]  # keep the scaled image at the origin
    ch, cw = cfg.crop
    sw, sh = w * scale, h * scale
    m[:, 2] -= [rng.uniform(min(0, sw - cw), max(0, sw - cw)), rng.uniform(min(0, sh - ch), max(0, sh - ch))]
    return m


def warp(rgb: np.ndarray, regions: list[Region], m: np.ndarray, crop: tuple[int, int]):
    """Apply the affine to the image (output ``crop`` size) and to every region's points."""
    out = cv2.warpAffine(rgb, m, (crop[1], crop[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=PAD_COLOR)
    moved = [Region(r.points @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32), r.text, r.ignore)
             for r in regions]
    return out, moved


def photometric(rng: random.Random, rgb: np.ndarray, cfg: AugmentConfig) -> np.ndarray:
    """Colour jitter (contrast, brightness, per-channel gain), occasional gray, occasional blur."""
    out = rgb
    if rng.random() < cfg.jitter_prob:
        gain = rng.uniform(0.7, 1.3) * np.array([rng.uniform(0.9, 1.1) for _ in range(3)], np.float32)
        offset = rng.uniform(-30, 30) + 128 * (1 - gain)
        out = np.clip(rgb.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    if rng.random() < cfg.gray_prob:
        out = np.repeat(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    if rng.random() < cfg.blur_prob:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    return out


class DetSampleSource:
    """Produces ``(rgb crop, Targets)`` for a global sample index, or a reason string.

    Synthetic scenes use their word regions by default (``synth_level="word"``): the gaps
    between words are then background, the line builder still chains words into lines, and
    lines can be split into words at those gaps. ``"line"`` trains on whole lines instead.
    Real photos use the regions of their set as stored (``###`` regions are ignored).

    With ``paste_crops`` (real word crops), a ``paste_ratio`` share of the synthetic samples are
    scenes of those crops pasted into background photos (:mod:`scenetext.synth.render_pasted`),
    drawn in ``paste_style`` (a :class:`~scenetext.synth.render_pasted.PasteStyle`; default: its
    defaults).
    """

    def __init__(self, real_samples: list[DetSample] = (), real_ratio: float = 0.3, seed: int = 0,
                 augment: AugmentConfig | None = None, targets: TargetConfig | None = None,
                 heights=ANCHOR_HEIGHTS, renderer_factory=None, synth_level: str = "word",
                 paste_crops: list[RecSample] = (), paste_ratio: float = 0.0, paste_style=None):
        if synth_level not in ("word", "line"):
            raise ValueError(f"synth_level must be 'word' or 'line', not {synth_level!r}")
        self.synth_level = synth_level
        self.real = list(real_samples)
        self.real_ratio = real_ratio if self.real else 0.0
        self.seed = seed
        self.augment = augment or AugmentConfig()
        self.targets = targets or TargetConfig()
        self.heights = tuple(heights)
        self._renderer = LazyRenderer(renderer_factory or scene_renderer)
        self.paste_ratio = paste_ratio if paste_crops else 0.0
        self._paster = LazyRenderer(functools.partial(pasted_scene_renderer, list(paste_crops), paste_style))

    @property
    def renderer(self):
        return self._renderer.get()

    def raw(self, rng: random.Random) -> tuple[np.ndarray, list[Region]]:
        """An unaugmented RGB image and its regions."""
        if rng.random() < self.real_ratio:
            sample = self.real[rng.randrange(len(self.real))]
            return load_image(sample.image), sample.regions
        renderer = self._paster.get() if self.paste_ratio and rng.random() < self.paste_ratio else self.renderer
        rgb, words, lines = renderer.render(rng)
        return rgb, words if self.synth_level == "word" else lines

    def __call__(self, index: int) -> tuple[np.ndarray, Targets] | str:
        rng = sample_rng(self.seed, index)
        try:
            rgb, regions = self.raw(rng)
        except Exception as err:  # a broken file or font must not stop training
            return f"error: {type(err).__name__}"
        cfg = self.augment
        rgb, regions = warp(rgb, regions, geometry(rng, rgb.shape[:2], cfg), cfg.crop)
        rgb = photometric(rng, rgb, cfg)
        targets = build_targets(regions, cfg.crop, self.targets, np.random.default_rng(rng.getrandbits(64)),
                                self.heights)
        return rgb, targets


class DetDataset:
    """Map-style torch dataset over global indices of a :class:`DetSampleSource`."""

    def __init__(self, source: DetSampleSource):
        self.source = source

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int):
        return self.source(index)


def collate(items) -> tuple[dict[str, torch.Tensor] | None, dict[str, int]]:
    """Stack good samples into ``{"images": (B, H, W, 3) uint8, "labels", "vertical", ...}``
    (``None`` when none is good) and count the reasons of the bad ones."""
    good = [item for item in items if not isinstance(item, str)]
    skipped: dict[str, int] = {}
    for item in items:
        if isinstance(item, str):
            skipped[item] = skipped.get(item, 0) + 1
    if not good:
        return None, skipped
    batch = {"images": torch.from_numpy(np.stack([rgb for rgb, _ in good]))}
    for name in ("labels", "vertical", "vertical_mask", "side", "side_mask"):
        batch[name] = torch.from_numpy(np.stack([getattr(t, name) for _, t in good]))
    batch["labels"] = batch["labels"].long()
    if all(t.negatives is not None for _, t in good):
        batch["negatives"] = torch.from_numpy(np.stack([t.negatives for _, t in good]))
    return batch, skipped
