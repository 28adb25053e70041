"""scenetext benchmarks (`make bench`): synthetic data speed and model speed on this machine.

Each figure is measured in one process; results are printed and written as a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

import torch


def _rate(fn, n: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t)


def bench_synth_words(n: int = 2000) -> dict:
    from scenetext.data.render_words import WordRenderer

    r, rng = WordRenderer(), random.Random(0)
    rate = _rate(lambda: r.render(rng), n, warmup=n)
    return {"name": "synthetic word crops (height 32, 1 process)", "value": rate, "unit": "crops/s", "target": ">= 500"}


def bench_synth_scenes(n: int = 200) -> dict:
    from scenetext.data.render_scenes import SceneRenderer

    r, rng = SceneRenderer(), random.Random(0)
    rate = _rate(lambda: r.render(rng), n, warmup=n)
    return {"name": "synthetic scenes (640x480, 1 process)", "value": rate, "unit": "scenes/s", "target": ">= 40"}


def bench_recognizer(batches: int = 20) -> dict | None:
    from scenetext.nn import fold_batchnorm
    from scenetext.recognition.model import CRNN
    from scenetext.recognition.predictor import DEFAULT_WEIGHTS, Recognizer

    if DEFAULT_WEIGHTS.is_file():
        rec, source = Recognizer.load(), "shipped weights"
    else:
        rec, source = Recognizer(fold_batchnorm(CRNN().eval())), "untrained model (no weights shipped)"
    x = torch.randn(64, 1, 32, 128)
    widths = torch.full((64,), 128)
    with torch.inference_mode():
        rate = 64 * _rate(lambda: rec.model(x, widths), batches, warmup=3)
    return {"name": f"CRNN recogniser, 32x128 crops, batch 64 ({source})", "value": rate, "unit": "crops/s",
            "target": ">= 500"}


BENCHES = {"synth-words": bench_synth_words, "synth-scenes": bench_synth_scenes, "rec": bench_recognizer}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("only", nargs="*", choices=[[], *BENCHES], help="benchmarks to run (default: all)")
    ap.add_argument("--out", type=Path, help="write a Markdown table here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.only or BENCHES:
        row = BENCHES[name]()
        if row:
            rows.append(row)
            print(f"{row['name']:<62} {row['value']:>9.1f} {row['unit']:<10} (target {row['target']})", flush=True)
    if args.out:
        machine = f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or platform.platform()}"
        lines = ["# Benchmarks", "", f"Machine: {machine}; Python {platform.python_version()}, torch {torch.__version__}.",
                 "Command: `make bench` (`python benchmarks/bench.py`).", "",
                 "| benchmark | value | unit | target |", "|---|---:|---|---|"]
        lines += [f"| {r['name']} | {r['value']:.1f} | {r['unit']} | {r['target']} |" for r in rows]
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
