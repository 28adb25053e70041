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


def word_renderer():
    from .render_words import WordRenderer

    return WordRenderer()


def scene_renderer():
    from .render_scenes import SceneRenderer

    return SceneRenderer()


def pasted_scene_renderer(crops, style=None):
    from .render_pasted import PasteSceneRenderer, PasteStyle

    return PasteSceneRenderer(crops, style=style or PasteStyle())


class LazyRenderer:
    """A renderer built on first use: fonts and backgrounds load once per worker process, not in
    the parent that pickles the data set."""

    def __init__(self, factory: Callable):
        self._factory = factory
        self._renderer = None

    def get(self):
        if self._renderer is None:
            self._renderer = self._factory()
        return self._renderer


class _LazyRenderDataset(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int, factory: Callable):
        self.n, self.seed = n, seed
        self._lazy = LazyRenderer(factory)

    @property
    def renderer(self):
        return self._lazy.get()

    def __len__(self):
        return self.n

    def _rng(self, index: int) -> random.Random:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return random.Random(sample_seed(self.seed, index))


class SynthWordDataset(_LazyRenderDataset):
    """Item i -> (RGB uint8 crop of height 32, label)."""

    def __init__(self, n: int, seed: int = 0, renderer_factory: Callable | None = None):
        super().__init__(n, seed, renderer_factory or word_renderer)

    def __getitem__(self, index: int):
        return self.renderer.render(self._rng(index))


class SynthSceneDataset(_LazyRenderDataset):
    """Item i -> (RGB uint8 scene, word regions, line regions)."""

    def __init__(self, n: int, seed: int = 0, renderer_factory: Callable | None = None):
        super().__init__(n, seed, renderer_factory or scene_renderer)

    def __getitem__(self, index: int):
        return self.renderer.render(self._rng(index))
