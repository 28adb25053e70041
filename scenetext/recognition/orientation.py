"""Words that run up or down: crops much taller than wide are read in three orientations.

Photographed word crops (ICDAR 2015 has many) often hold a word rotated by 90 degrees, running
up a pole or down a book spine, in an axis-aligned box taller than wide. The CRNN reads left to
right, so such a crop is read as it is, turned 90 degrees clockwise and turned 90 degrees
counter-clockwise, and the reading with the highest confidence wins. Training uses the same
three orientations the other way round: for each tall training crop the orientation in which
the starting model finds its *label* most likely (CTC log-likelihood) is fixed once per run, so
the model learns to read the rotated words upright instead of learning them sideways.
"""

from __future__ import annotations

import cv2
import numpy as np

# A crop at least this many times taller than wide is tried in all three orientations. Chosen on
# the training crops with an earlier small recogniser: correct reads of ic15_train crops at least this
# tall went 83 -> 111 of 216 (ratio 1.5: 36 -> 65 of 145; 1.0: 192 -> 220 of 374), and no
# iiit5k_train crop this tall lost its reading (at 1.0 one did, at 0.8 two).
TALL_RATIO = 1.2

# Degrees clockwise -> OpenCV rotation code (0: the crop as it is).
ROTATIONS = {0: None, 90: cv2.ROTATE_90_CLOCKWISE, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def is_tall(img: np.ndarray, ratio: float | None = TALL_RATIO) -> bool:
    return ratio is not None and img.shape[0] >= ratio * img.shape[1]


def rotate(img: np.ndarray, degrees: int) -> np.ndarray:
    """The crop turned `degrees` (0, 90 or 270) clockwise."""
    code = ROTATIONS[degrees]
    return img if code is None else cv2.rotate(img, code)


def label_orientations(model, charset, samples, ratio: float = TALL_RATIO) -> dict[str, int]:
    """For each tall crop among `samples` (with .image and .text), the rotation (degrees
    clockwise) under which `model` gives its label the highest CTC likelihood. Crops the charset
    cannot encode or that cannot be read are left out (they stay as they are)."""
    import torch
    import torch.nn.functional as F

    from .preprocess import min_frames, pad_batch, prepare_crop

    chosen: dict[str, int] = {}
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for s in samples:
            bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
            if bgr is None or not is_tall(bgr, ratio) or not s.text or not charset.covers(s.text):
                continue
            ids = charset.encode(s.text)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            arrays = [prepare_crop(rotate(rgb, d)) for d in ROTATIONS]
            x, widths = pad_batch(arrays)
            log_probs = model(x, widths)
            frames = model.frames(widths)
            targets = torch.tensor(ids * len(arrays), dtype=torch.long)
            lengths = torch.full((len(arrays),), len(ids), dtype=torch.long)
            nll = F.ctc_loss(log_probs, targets, frames, lengths, blank=0, reduction="none", zero_infinity=False)
            nll = torch.where(frames >= min_frames(ids), nll, torch.full_like(nll, float("inf")))
            if torch.isfinite(nll).any():
                chosen[str(s.image)] = list(ROTATIONS)[int(nll.argmin())]
    model.train(was_training)
    return chosen
