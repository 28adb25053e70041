"""Write the ic15_train photos held out of detector training as a detection set folder at
1280x720, the size of ICDAR 2015's test photos, so the whole pipeline can be scored on them with
the product's own commands (``scenetext eval e2e``, ``scenetext eval det``).

``det/ic15_train`` is stored at 960x540; the detector reads a photo at a fixed short side, so the
same words would look 4/3 larger to it than in a 1280x720 test photo. The held-out photos
(``split_holdout``, 5 %, the split every detector training run keeps out) are enlarged back to
1280x720 and their boxes scaled with them. Choices of detector settings are made on this folder
and on ``benchmarks/det_heldout.py``, never on the validation sets.

    python benchmarks/ic15_heldout.py -o runs/ic15h720
    scenetext eval e2e runs/ic15h720
    scenetext eval det runs/ic15h720 --protocol deteval --level line
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from scenetext.data.formats import DetSample, read_det_set, write_det_set
from scenetext.imageio import atomic_save_image, load_image
from scenetext.train.common import split_holdout

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIZE = (1280, 720)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default="runs/ic15h720", help="folder to write (images/ and gt/)")
    args = ap.parse_args()
    out = Path(args.out)
    _, held = split_holdout(read_det_set(DATA / "det/ic15_train"), 0.05)
    written = []
    for sample in held:
        rgb = load_image(sample.image)
        scale = np.array([SIZE[0] / rgb.shape[1], SIZE[1] / rgb.shape[0]], np.float32)
        image = out / "images" / f"{sample.image.stem}.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        atomic_save_image(image, cv2.resize(rgb, SIZE, interpolation=cv2.INTER_LINEAR), quality=95)
        written.append(DetSample(image, [replace(r, points=r.points * scale) for r in sample.regions]))
    write_det_set(out, written)
    print(f"{len(written)} photos written to {out}")


if __name__ == "__main__":
    main()
