"""Crop -> model input: gray, height 32, aspect kept, width a multiple of the frame stride;
batching with padding."""

from __future__ import annotations

import cv2
import numpy as np

HEIGHT = 32
MIN_WIDTH = 8
#: Input columns per output frame of every CRNN variant at height 32 (its width stride): a crop
#: W columns wide gives W // FRAME_STRIDE frames, the most characters CTC can read from it.
FRAME_STRIDE = 4


def target_width(w: int, h: int, height: int = HEIGHT, max_width: int | None = None) -> int:
    """Width after scaling to `height` with the aspect kept, rounded to a multiple of
    :data:`FRAME_STRIDE`."""
    tw = max(MIN_WIDTH, int(round(w * height / max(h, 1) / FRAME_STRIDE)) * FRAME_STRIDE)
    if max_width is not None:
        tw = min(tw, max(MIN_WIDTH, max_width // FRAME_STRIDE * FRAME_STRIDE))
    return tw


def prepare_crop(img: np.ndarray, height: int = HEIGHT, max_width: int | None = None) -> np.ndarray:
    """RGB/gray uint8 crop -> float32 (height, W) in [-1, 1]."""
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.shape[2] == 3 else img[..., 0]
    h, w = img.shape[:2]
    tw = target_width(w, h, height, max_width)
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    out = cv2.resize(img, (tw, height), interpolation=interp)
    return out.astype(np.float32) / 127.5 - 1.0


def pad_arrays(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad (H, W_i) arrays to a float32 (B, 1, H, W_max) array; returns it and the widths
    (int64, (B,))."""
    h = arrays[0].shape[0]
    wmax = max(a.shape[1] for a in arrays)
    batch = np.zeros((len(arrays), 1, h, wmax), np.float32)
    for i, a in enumerate(arrays):
        batch[i, 0, :, : a.shape[1]] = a
    return batch, np.array([a.shape[1] for a in arrays], dtype=np.int64)


def pad_batch(arrays: list[np.ndarray]):
    """:func:`pad_arrays` as torch tensors: ``(batch, widths)``."""
    import torch

    batch, widths = pad_arrays(arrays)
    return torch.from_numpy(batch), torch.from_numpy(widths)


def width_batches(widths: list[int], batch_size: int, max_columns: int) -> list[list[int]]:
    """Group crop indices into batches of similar width for one padded forward pass each.

    Indices are taken in order of width (narrowest first); a batch closes at ``batch_size`` crops
    or when padding it to its widest crop would exceed ``max_columns`` columns in all, so a page
    of very wide lines is read in several smaller batches instead of one huge tensor (memory,
    not speed, is what this bounds). A crop wider than ``max_columns`` gets a batch of its own.
    """
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) >= batch_size or (len(current) + 1) * widths[i] > max_columns):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def min_frames(label_ids: list[int]) -> int:
    """CTC needs a frame per label plus one blank between repeated labels."""
    return len(label_ids) + sum(1 for a, b in zip(label_ids, label_ids[1:]) if a == b)
