"""Score a detector on data held out of the *training* sets: how detector files, word splitters
and their settings are chosen (the validation sets are never used for that).

Sets (all deterministic, built once under ``--cache``):

- the 25 ic03_train / td500_train photos held out of detector training (``split_holdout``, 5 %),
  scored by IoU at word level and DetEval at line level;
- 40 "paste-holdout" scenes made only of the word crops held out of the recognition training
  sets (small photographed incidental words, ICDAR 2015 style);
- 40 synthetic font scenes drawn with a seed no training run uses (multi-word lines);
- 40 more pasted-crop scenes of the held-out crops at 1280x720, the size of the photos the speed
  target is set on ("paste720"; the first set is 960x540, which the detector sees enlarged more,
  so its words look bigger to it than the same words in a 1280x720 photo);
- the ~50 ic15_train photos held out of detector training (``split_holdout``, 5 %; ICDAR 2015
  incidental scenes, the kind of photo the ic15_test figures are on), scored by IoU at word level
  and DetEval at line level ("ic15h");
- the same 40 scenes' recipe pasted seamlessly ("seam720": each crop fades into the scene over
  0.4 of its height of its own edge pixels, so no patch edge shows where the annotated region
  ends, as in a photo), scored by IoU word and DetEval line.

Prints one JSON line: the scores, ``combined`` = mean of (the photos' mean of IoU word and DetEval
line hmean) and the paste-holdout IoU word hmean, the choice rule of the model cards in
``weights/README.md``; ``combined720`` the same with paste720; and ``font_H`` and the seam720
scores beside them.

    python benchmarks/det_heldout.py                              # shipped detector + word splitter
    python benchmarks/det_heldout.py --word-split ink             # the blank-column word cut
    python benchmarks/det_heldout.py --weights runs/det/last.pt --score-threshold 0.5 --scale 900
    python benchmarks/det_heldout.py --zoom 1400                  # a closer look for small text
    python benchmarks/det_heldout.py --scale 900 1400 --max-side 2700   # two whole-image scales
    python benchmarks/det_heldout.py --line-builder oriented      # lines at any angle (detection/oriented.py)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from scenetext.data.formats import DetSample, read_det_set, read_rec_set
from scenetext.detection.evaluate import evaluate_samples
from scenetext.detection.predictor import LINE_BUILDERS, Detector, Zoom, word_split_from
from scenetext.detection.splitter import WordSplitter
from scenetext.train.common import split_holdout
from scenetext.train.detector import paste_holdout_set, rendered_set

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FONT_SEED = 987_654_321
PASTE720_SEED = 720_1280


def font_holdout_set(folder: Path, n: int = 40) -> list[DetSample]:
    from scenetext.synth.render_scenes import SceneRenderer

    return rendered_set(folder, SceneRenderer, [FONT_SEED + i for i in range(n)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="detector file or checkpoint (default: shipped)")
    ap.add_argument("--word-split", default="auto", help="auto | ink | none | a word-splitter file")
    ap.add_argument("--split-threshold", type=float, help="word splitter's frame threshold")
    ap.add_argument("--score-threshold", type=float)
    ap.add_argument("--line-min-score", type=float)
    ap.add_argument("--scale", type=int, nargs="+", help="short side(s); several are merged by line NMS")
    ap.add_argument("--max-side", type=int)
    ap.add_argument("--zoom", type=int, help="short side of a closer look at the first scale's weak spots")
    ap.add_argument("--zoom-threshold", type=float, default=Zoom.threshold)
    ap.add_argument("--zoom-margin", type=int, default=Zoom.margin)
    ap.add_argument("--line-margin", type=float, help="line boxes grown by this share of their height above and below")
    ap.add_argument("--line-builder", choices=sorted(LINE_BUILDERS), help="how proposals become lines")
    ap.add_argument("--cache", default="runs", help="folder for the generated held-out scenes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sets", default="all", help="comma list of photos,paste,font,paste720,seam720,ic15h (default all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    real = [s for name in ("det/ic03_train", "det/td500_train") for s in read_det_set(DATA / name)]
    _, photos = split_holdout(real, 0.05)
    crops = [s for name in ("rec/ic15_train", "rec/iiit5k_train", "rec/svt_train") for s in read_rec_set(DATA / name)]
    _, crops_held = split_holdout(crops, 0.05)
    paste = paste_holdout_set(Path(args.cache) / "paste_holdout", crops_held, 40)
    font = font_holdout_set(Path(args.cache) / "font_holdout")
    paste720 = paste_holdout_set(Path(args.cache) / "paste_holdout_1280x720", crops_held, 40, seed=PASTE720_SEED,
                                 size=(1280, 720))
    seam720 = paste_holdout_set(Path(args.cache) / "paste_holdout_seam720", crops_held, 40, seed=PASTE720_SEED,
                                size=(1280, 720), margin=0.4)

    splitter = word_split_from(args.word_split)
    if args.split_threshold is not None and isinstance(splitter, WordSplitter):
        splitter.config = replace(splitter.config, threshold=args.split_threshold)
    options = {"score_threshold": args.score_threshold, "line_min_score": args.line_min_score,
               "scales": tuple(args.scale) if args.scale else None, "max_side": args.max_side,
               "zoom": Zoom(args.zoom, args.zoom_threshold, args.zoom_margin) if args.zoom else None,
               "line_margin": args.line_margin, "line_builder": args.line_builder}
    det = Detector.load(args.weights, word_split=splitter, **{k: v for k, v in options.items() if v is not None})

    _, ic15_held = split_holdout(read_det_set(DATA / "det/ic15_train"), 0.05)
    wanted = set(args.sets.split(",")) if args.sets != "all" else {"photos", "paste", "font", "paste720", "seam720",
                                                                    "ic15h"}
    nothing = {"hmean": float("nan"), "precision": float("nan"), "recall": float("nan"), "ms_per_image": float("nan")}

    def score(name, samples, protocol, level):
        return evaluate_samples(det, samples, protocol, level) if name in wanted else nothing

    iou = score("photos", photos, "iou", "word")
    deteval = score("photos", photos, "deteval", "line")
    pasted = score("paste", paste, "iou", "word")
    fonts = score("font", font, "iou", "word")
    p720 = score("paste720", paste720, "iou", "word")
    seam = score("seam720", seam720, "iou", "word")
    seam_lines = score("seam720", seam720, "deteval", "line")
    ic15_iou = score("ic15h", ic15_held, "iou", "word")
    ic15_deteval = score("ic15h", ic15_held, "deteval", "line")
    photo_mean = (iou["hmean"] + deteval["hmean"]) / 2
    print(json.dumps({
        "ic15h_n": len(ic15_held), "ic15h_iou_word": round(ic15_iou["hmean"], 3),
        "ic15h_iou_P": round(ic15_iou["precision"], 3), "ic15h_iou_R": round(ic15_iou["recall"], 3),
        "ic15h_deteval_line": round(ic15_deteval["hmean"], 3),
        "detector": det.name, "photos_iou_word": round(iou["hmean"], 3), "photos_deteval_line": round(deteval["hmean"], 3),
        "paste_P": round(pasted["precision"], 3), "paste_R": round(pasted["recall"], 3),
        "paste_H": round(pasted["hmean"], 3), "combined": round((photo_mean + pasted["hmean"]) / 2, 4),
        "font_H": round(fonts["hmean"], 3),
        "paste720_P": round(p720["precision"], 3), "paste720_R": round(p720["recall"], 3),
        "paste720_H": round(p720["hmean"], 3), "combined720": round((photo_mean + p720["hmean"]) / 2, 4),
        "seam720_H": round(seam["hmean"], 3), "seam720_deteval_line": round(seam_lines["hmean"], 3),
        "ms_per_photo": round(iou["ms_per_image"]) if iou["ms_per_image"] == iou["ms_per_image"] else None,
    }))


if __name__ == "__main__":
    main()
