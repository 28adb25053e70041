"""Score a recogniser on the crops held out of its *training* sets: how recogniser files are
chosen (the validation sets are never used for that).

The held-out crops are the 5 % that ``scenetext train rec`` holds out by path hash
(``split_holdout``) of ``rec/iiit5k_train``, ``rec/ic15_train``, ``rec/svt_train`` and the word
crops of ``det/ic03_train`` (cut once into ``CACHE/ic03_crops`` by ``scenetext data crops``, the
folder the training command reads). Prints one JSON line: accuracy (standard protocol),
case-sensitive accuracy and 1 - NED over all held-out crops, accuracy per source set, and the
crops read per second (preprocessing, network and decoding; a loaded machine moves it).

    python benchmarks/rec_heldout.py                                  # shipped crnn.pt
    python benchmarks/rec_heldout.py --weights runs/rec/best.pt --cache runs
    python benchmarks/rec_heldout.py --lm                             # with the language prior
    python benchmarks/rec_heldout.py --lm-weight 0.3                  # ... at another weight
    python benchmarks/rec_heldout.py --lm --no-near-words             # ... without the near-word step
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from scenetext.data.formats import read_det_set, read_rec_set
from scenetext.data.word_crops import write_word_crops
from scenetext.evaluation.text import RecognitionScore
from scenetext.recognition.beam import lm_decoder
from scenetext.recognition.predictor import Recognizer
from scenetext.train.common import split_holdout

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def held_out_crops(cache: Path):
    """``[(source name, RecSample)]`` of the held-out training crops."""
    crops_dir = cache / "ic03_crops"
    if not (crops_dir / "labels.tsv").is_file():
        write_word_crops(read_det_set(DATA / "det/ic03_train"), crops_dir)
    sets = {name: read_rec_set(DATA / f"rec/{name}") for name in ("iiit5k_train", "ic15_train", "svt_train")}
    sets["ic03_crops"] = read_rec_set(crops_dir)
    return [(name, s) for name, samples in sets.items() for s in split_holdout(samples, 0.05)[1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="recogniser file or checkpoint (default: shipped)")
    ap.add_argument("--cache", default="runs", help="folder for the cut ic03_train word crops")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lm", action="store_true", help="decode with the English language prior")
    ap.add_argument("--lm-weight", type=float, help="the prior's weight (implies --lm; default: the decoder's)")
    ap.add_argument("--no-near-words", action="store_true", help="with the prior: do not look readings up among its words")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import cv2

    held = held_out_crops(Path(args.cache))
    images = [cv2.cvtColor(cv2.imread(str(s.image)), cv2.COLOR_BGR2RGB) for _, s in held]
    texts = [s.text for _, s in held]
    lm = args.lm_weight if args.lm_weight is not None else (True if args.lm else None)
    decoder = lm_decoder(lm)
    if decoder is not None and args.no_near_words:
        decoder = replace(decoder, near_words=False)
    rec = Recognizer.load(args.weights, lm=decoder)
    rec.recognize(images[:64])  # warm-up (and the prior loaded) before timing
    start = time.perf_counter()
    predictions = [d.text for d in rec.recognize(images)]
    seconds = time.perf_counter() - start
    overall, per_set = RecognitionScore(), {}
    for (name, s), prediction in zip(held, predictions):
        overall.add(prediction, s.text)
        per_set.setdefault(name, RecognitionScore()).add(prediction, s.text)
    out = {"recogniser": rec.name, "n": overall.n,
           **{k: round(v, 4) for k, v in overall.to_dict().items() if k != "n"},
           "per_set": {name: round(score.accuracy, 4) for name, score in per_set.items()},
           "crops_per_second": round(overall.n / seconds, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
