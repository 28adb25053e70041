"""Seeded, worker-safe torch Datasets that render synthetic samples on the fly.

Sample i is a pure function of (seed, i): any worker can render any index, and the same seed
gives the same data set. Renderers (fonts, backgrounds) are built lazily in each worker.
"""

from __future__ import annotations

import random
from typing import Callable

import torch


def sample_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index) * 7919 + 17


class _LazyRenderDataset(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int, factory: Callable):
        self.n, self.seed, self._factory = n, seed, factory
        self._renderer = None

    @property
    def renderer(self):
        if self._renderer is None:
            self._renderer = self._factory()
        return self._renderer

    def __len__(self):
        return self.n

    def _rng(self, index: int) -> random.Random:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return random.Random(sample_seed(self.seed, index))


class SynthWordDataset(_LazyRenderDataset):
    """Item i -> (RGB uint8 crop of height 32, label)."""

    def __init__(self, n: int, seed: int = 0, renderer_factory: Callable | None = None):
        if renderer_factory is None:
            from .render_words import WordRenderer as renderer_factory
        super().__init__(n, seed, renderer_factory)

    def __getitem__(self, index: int):
        return self.renderer.render(self._rng(index))


class SynthSceneDataset(_LazyRenderDataset):
    """Item i -> (RGB uint8 scene, word regions, line regions)."""

    def __init__(self, n: int, seed: int = 0, renderer_factory: Callable | None = None):
        if renderer_factory is None:
            from .render_scenes import SceneRenderer as renderer_factory
        super().__init__(n, seed, renderer_factory)

    def __getitem__(self, index: int):
        return self.renderer.render(self._rng(index))
