"""Word crops cut from a detection set, for training the recogniser on the words of real photos.

Every transcribed region (not ``###``, not ``*``) of a :class:`~scenetext.data.formats.DetSample`
becomes one crop, cut the way the pipeline cuts what the detector finds
(:func:`scenetext.crop.crop_line`: a perspective warp of the quadrilateral with its padding and
height clamp), so that the recogniser trains on the same kind of crop it reads. Regions of more
than four points are cut along their minimum-area rectangle. The crops form a recognition set
(``images/`` + ``labels.tsv``) that ``scenetext train rec --real`` reads like any other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from ..crop import crop_line, quad_size
from ..imageio import ImageLoadError, atomic_save_image, load_image
from .formats import DetSample, RecSample, Region, write_rec_set

MIN_SIDE = 4.0  # regions thinner than this many pixels hold no readable word


@dataclass(frozen=True)
class CropReport:
    """What :func:`write_word_crops` did: the crops written and the regions or photos it passed over."""

    samples: list[RecSample]
    skipped_regions: int
    unreadable_photos: list[str]


def region_quad(region: Region) -> np.ndarray:
    """The region's quadrilateral ``(4, 2)`` clockwise from its top-left; polygons of more than
    four points become their minimum-area rectangle."""
    points = np.asarray(region.points, dtype=np.float32)
    if len(points) == 4:
        return points
    box = cv2.boxPoints(cv2.minAreaRect(points)).astype(np.float32)
    start = int(np.argmin(box.sum(axis=1)))  # top-left: smallest x + y
    box = np.roll(box, -start, axis=0)
    # boxPoints runs clockwise in image coordinates (y down) already; make sure of it
    a, b = box[1] - box[0], box[2] - box[1]
    return box if a[0] * b[1] - a[1] * b[0] > 0 else box[[0, 3, 2, 1]]


def cut_words(rgb: np.ndarray, regions: Iterable[Region]) -> list[tuple[np.ndarray, str]]:
    """``(crop, text)`` for every transcribed region of a photo that is at least ``MIN_SIDE`` px
    on its short side."""
    out = []
    for region in regions:
        if not region.transcribed or not region.text.strip():
            continue
        quad = region_quad(region)
        width, height = quad_size(quad)
        if min(width, height) < MIN_SIDE:
            continue
        out.append((crop_line(rgb, quad).image, region.text))
    return out


def write_word_crops(samples: Iterable[DetSample], folder: str | os.PathLike) -> CropReport:
    """Cut every photo's words into ``folder/images/<set>_<photo stem>_<k>.png`` (``<set>``: the
    detection set's folder name) and write
    ``folder/labels.tsv``; photos that cannot be read are listed, not fatal."""
    folder = Path(folder).absolute()  # labels.tsv stores paths relative to it
    (folder / "images").mkdir(parents=True, exist_ok=True)
    written: list[RecSample] = []
    skipped, unreadable = 0, []
    for sample in samples:
        try:
            rgb = load_image(sample.image)
        except ImageLoadError as err:
            unreadable.append(str(err))
            continue
        words = cut_words(rgb, sample.regions)
        skipped += sum(1 for r in sample.regions if r.transcribed and r.text.strip()) - len(words)
        for k, (crop, text) in enumerate(words):
            image = Path(sample.image)
            path = folder / "images" / f"{image.parent.parent.name}_{image.stem}_{k:03d}.png"
            atomic_save_image(path, crop)
            written.append(RecSample(path, text))
    write_rec_set(folder, written)
    return CropReport(written, skipped, unreadable)
