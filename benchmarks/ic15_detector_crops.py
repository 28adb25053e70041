"""Cut the words of ``det/ic15_train`` at the boxes the shipped pipeline finds (``scenetext data
crops --boxes detector``), keeping out every word the recogniser's held-out split holds.

``rec/ic15_train`` holds the same 4,468 words as the photos, in the same order (photo by photo,
region by region), and 5 % of those crops are held out to choose recogniser checkpoints
(``split_holdout``). A detector-box crop of a held-out word would put that word into training
under another view, so those regions are made don't-care before cutting (a box on them is not
cut), and the photos held out of detector training are left out whole.

    python benchmarks/ic15_detector_crops.py -o runs/ic15_detcrops
    scenetext train rec ... --real runs/ic15_detcrops
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from scenetext.data.formats import read_det_set, read_rec_set
from scenetext.data.word_crops import write_word_crops
from scenetext.reader import Reader
from scenetext.train.common import split_holdout

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default="runs/ic15_detcrops")
    ap.add_argument("--weights-det", help="detector model file (default: shipped)")
    args = ap.parse_args()

    photos = read_det_set(DATA / "det/ic15_train")
    _, det_held = split_holdout(photos, 0.05)
    det_held = {s.image.name for s in det_held}
    crops = read_rec_set(DATA / "rec/ic15_train")
    _, rec_held = split_holdout(crops, 0.05)
    rec_held = {Path(s.image).name for s in rec_held}
    ordered_crops = sorted(crops, key=lambda s: int(Path(s.image).stem))
    ordered_photos = sorted(photos, key=lambda s: int(s.image.stem.split("_")[1]))
    words = [(s, i) for s in ordered_photos for i, r in enumerate(s.regions) if not r.ignore]
    if len(words) != len(ordered_crops) or any(s.regions[i].text != c.text for (s, i), c in zip(words, ordered_crops)):
        raise SystemExit("rec/ic15_train and det/ic15_train do not hold the same words in the same order")
    held_regions = {(s.image.name, i) for (s, i), c in zip(words, ordered_crops) if Path(c.image).name in rec_held}

    samples = []
    for s in ordered_photos:
        if s.image.name in det_held:
            continue
        regions = [replace(r, ignore=True) if (s.image.name, i) in held_regions else r for i, r in enumerate(s.regions)]
        samples.append(replace(s, regions=regions))
    reader = Reader(detector_weights=args.weights_det)
    report = write_word_crops(samples, args.out, boxes=reader.boxes_to_read)
    print(f"{len(report.samples)} crops from {len(samples)} photos in {args.out} "
          f"({len(held_regions)} held-out words kept out; {report.skipped_regions} words without a crop)")


if __name__ == "__main__":
    main()
