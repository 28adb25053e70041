"""Word crops cut from a detection set, for training the recogniser on the words of real photos.

Ground-truth boxes (the default): every transcribed region (not ``###``, not ``*``) of a
:class:`~scenetext.data.formats.DetSample` becomes one crop, cut the way the pipeline cuts what
the detector finds (:func:`scenetext.crop.crop_line`: a perspective warp of the quadrilateral with
its padding and height clamp), so that the recogniser trains on the same kind of crop it reads.
Regions of more than four points are cut along their minimum-area rectangle.

Detector boxes (``boxes=``, e.g. :meth:`scenetext.reader.Reader.boxes_to_read`): the boxes the
pipeline itself reads in each photo are matched to the transcribed regions as the ICDAR 2015
IoU protocol matches detections (:func:`scenetext.evaluation.iou.evaluate_image_iou`: IoU over
0.5, one to one; ``###`` and ``*`` regions are don't-care), and each matched box is cut by
:func:`~scenetext.crop.crop_line` and labelled with its region's text: crops with the
detector's own extent, offsets and context, as the recogniser gets them in a run. Boxes that
match no word, and matched boxes that hold a second region too (their crop shows more than the
label says), are left out.

The crops form a recognition set (``images/`` + ``labels.tsv``) that ``scenetext train rec
--real`` reads like any other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from ..crop import crop_line, quad_size
from ..imageio import ImageLoadError, atomic_save_image, load_image
from .formats import DetSample, RecSample, Region, write_rec_set

MIN_SIDE = 4.0  # regions thinner than this many pixels hold no readable word
CROWDED = 0.3  # a detector box holding this much of a second region shows more than its word

#: Boxes to cut in a photo: RGB image -> quadrilaterals ``(4, 2)`` in its pixels.
BoxFinder = Callable[[np.ndarray], Sequence[np.ndarray]]


@dataclass(frozen=True)
class CropReport:
    """What :func:`write_word_crops` did: the crops written and the regions or photos it passed over.

    ``skipped_regions``: transcribed regions left without a crop (too thin to read; with detector
    boxes, also the words no box matched). ``unmatched_boxes``: detector boxes that matched no
    word and lay on no don't-care (``###`` or ``*``) region; ``crowded_boxes``: boxes that
    matched a word but hold another region too, left out (both 0 for ground-truth boxes)."""

    samples: list[RecSample]
    skipped_regions: int
    unreadable_photos: list[str]
    unmatched_boxes: int = 0
    crowded_boxes: int = 0


def _labelled(region: Region) -> bool:
    return region.transcribed and bool(region.text.strip())


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
        if not _labelled(region):
            continue
        quad = region_quad(region)
        width, height = quad_size(quad)
        if min(width, height) < MIN_SIDE:
            continue
        out.append((crop_line(rgb, quad).image, region.text))
    return out


@dataclass(frozen=True)
class DetectedWords:
    """The words of one photo cut at the detector's boxes (:func:`cut_detected_words`):
    the crops, the boxes that matched no word, and the matched boxes left out because they hold
    another region too."""

    crops: list[tuple[np.ndarray, str]]
    unmatched_boxes: int
    crowded_boxes: int


def cut_detected_words(rgb: np.ndarray, regions: Sequence[Region], boxes: Sequence[np.ndarray],
                       crowded: float = CROWDED) -> DetectedWords:
    """``(crop, text)`` for every box that matches a transcribed region by the IoU protocol, cut
    from the box (not the region) and labelled with the region's text, in region order. A match
    whose box also holds more than ``crowded`` of another region's area (a short word beside a
    long one: ``FOR QUEUEING`` matches ``QUEUEING``) is left out: its label would not be what
    the crop shows."""
    from ..evaluation.iou import evaluate_image_iou, inside_fractions, polygons

    boxes = [np.asarray(b, dtype=np.float32) for b in boxes if min(quad_size(b)) >= MIN_SIDE]
    result = evaluate_image_iou([r.points for r in regions], [not _labelled(r) for r in regions], boxes)
    inside = inside_fractions(polygons([r.points for r in regions]), polygons(boxes))  # (regions, boxes)
    crops, crowded_boxes = [], 0
    for g, d in sorted(result.matches):
        others = np.delete(inside[:, d], g)
        if (others > crowded).any():
            crowded_boxes += 1
            continue
        crops.append((crop_line(rgb, boxes[d]).image, regions[g].text))
    return DetectedWords(crops, result.n_det_care - len(result.matches), crowded_boxes)


def write_word_crops(samples: Iterable[DetSample], folder: str | os.PathLike,
                     boxes: BoxFinder | None = None) -> CropReport:
    """Cut every photo's words into ``folder/images/<set>_<photo stem>_<k>.png`` (``<set>``: the
    detection set's folder name; ``_d<k>`` for crops at detector boxes) and write
    ``folder/labels.tsv``; photos that cannot be read are listed, not fatal. ``boxes``: cut at
    the boxes it finds in each photo (see the module notes) instead of the ground-truth regions."""
    folder = Path(folder).absolute()  # labels.tsv stores paths relative to it
    (folder / "images").mkdir(parents=True, exist_ok=True)
    written: list[RecSample] = []
    skipped, unmatched, crowded, unreadable = 0, 0, 0, []
    tag = "d" if boxes is not None else ""
    for sample in samples:
        try:
            rgb = load_image(sample.image)
        except ImageLoadError as err:
            unreadable.append(str(err))
            continue
        if boxes is None:
            words = cut_words(rgb, sample.regions)
        else:
            detected = cut_detected_words(rgb, sample.regions, boxes(rgb))
            words = detected.crops
            unmatched, crowded = unmatched + detected.unmatched_boxes, crowded + detected.crowded_boxes
        skipped += sum(1 for r in sample.regions if _labelled(r)) - len(words)
        for k, (crop, text) in enumerate(words):
            image = Path(sample.image)
            path = folder / "images" / f"{image.parent.parent.name}_{image.stem}_{tag}{k:03d}.png"
            atomic_save_image(path, crop)
            written.append(RecSample(path, text))
    write_rec_set(folder, written)
    return CropReport(written, skipped, unreadable, unmatched, crowded)
