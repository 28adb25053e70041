"""Write synthetic data sets to disk in the project's plain formats (`scenetext synth ...`).

Words: DIR/images/<index>.jpg + DIR/labels.tsv. Scenes: DIR/images/<index>.jpg, DIR/gt/<index>.txt
(word quadrilaterals, ICDAR 2015 form) and DIR/gt_lines/<index>.txt (line quadrilaterals).
Rendering runs in worker processes; files are written in the main process, in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import torch

from ..data.formats import DetSample, write_det_set
from ..imageio import atomic_write_text
from .datasets import SynthSceneDataset, SynthWordDataset


def encode_jpg(rgb, quality: int = 92) -> bytes:
    """JPEG bytes of an RGB ``uint8`` image."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _as_is(sample):
    return sample


def _iterate(dataset, workers: int):
    if workers <= 0:
        return (dataset[i] for i in range(len(dataset)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers, prefetch_factor=8,
                                         collate_fn=_as_is)
    return iter(loader)


def _name(i: int, n: int) -> str:
    return f"{i:0{max(6, len(str(n - 1)))}d}"


def write_words(out: str | Path, n: int, seed: int = 0, workers: int = 1, progress: Callable | None = None) -> Path:
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (img, label) in enumerate(_iterate(SynthWordDataset(n, seed), workers)):
        rel = f"images/{_name(i, n)}.jpg"
        (out / rel).write_bytes(encode_jpg(img))
        lines.append(f"{rel}\t{label}")
        if progress:
            progress(1)
    atomic_write_text(out / "labels.tsv", "\n".join(lines) + "\n")
    return out


def write_scenes(out: str | Path, n: int, seed: int = 0, workers: int = 1, progress: Callable | None = None) -> Path:
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "gt").mkdir(exist_ok=True)
    (out / "gt_lines").mkdir(exist_ok=True)
    for i, (img, words, lines) in enumerate(_iterate(SynthSceneDataset(n, seed), workers)):
        stem = _name(i, n)
        image = out / "images" / f"{stem}.jpg"
        image.write_bytes(encode_jpg(img))
        write_det_set(out, [DetSample(image, words, lines)])
        if progress:
            progress(1)
    return out
