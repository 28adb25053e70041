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
from pathlib import Path

import cv2

from scenetext.data.formats import read_det_set
from scenetext.train.common import split_holdout

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIZE = (1280, 720)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default="runs/ic15h720", help="folder to write (images/ and gt/)")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    _, held = split_holdout(read_det_set(DATA / "det/ic15_train"), 0.05)
    for sample in held:
        image = cv2.imread(str(sample.image), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read {sample.image}")
        h, w = image.shape[:2]
        fx, fy = SIZE[0] / w, SIZE[1] / h
        cv2.imwrite(str(out / "images" / f"{sample.image.stem}.jpg"), cv2.resize(image, SIZE, interpolation=cv2.INTER_LINEAR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        lines = []
        for region in sample.regions:
            points = ",".join(f"{round(float(x) * fx)},{round(float(y) * fy)}" for x, y in region.points)
            lines.append(f"{points},{'###' if region.ignore else region.text}")
        (out / "gt" / f"{sample.image.stem}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(held)} photos written to {out}")


if __name__ == "__main__":
    main()
