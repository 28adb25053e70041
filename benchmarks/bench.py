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

import numpy as np
import torch


def _rate(fn, n: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t)


def bench_machine(repeats: int = 5) -> dict:
    """Plain fp32 matrix products: how fast this machine is right now. A shared machine's speed
    drifts (on our 2-core VM from ~30 to ~60 GFLOP/s within minutes), and every figure below moves
    with it; run first and last so a table can be read against the machine's state."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    rates = [2 * 1024**3 * _rate(lambda: a @ b, 10, warmup=2) / 1e9 for _ in range(repeats)]
    return {"name": "machine: fp32 matmul 1024x1024 (median of 5)", "value": float(np.median(rates)),
            "unit": "GFLOP/s", "target": ""}


def bench_synth_words(n: int = 2000) -> dict:
    from scenetext.synth.render_words import WordRenderer

    r, rng = WordRenderer(), random.Random(0)
    rate = _rate(lambda: r.render(rng), n, warmup=n)
    return {"name": "synthetic word crops (height 32, 1 process)", "value": rate, "unit": "crops/s", "target": ">= 500"}


def bench_synth_scenes(n: int = 200) -> dict:
    from scenetext.synth.render_scenes import SceneRenderer

    r, rng = SceneRenderer(), random.Random(0)
    rate = _rate(lambda: r.render(rng), n, warmup=n)
    return {"name": "synthetic scenes (640x480, 1 process)", "value": rate, "unit": "scenes/s", "target": ">= 40"}


def bench_recognizer(batches: int = 10) -> dict:
    """Whole recogniser path (preprocess, batched model, greedy decoding) on 32x128 crops."""
    from scenetext.nn import fold_batchnorm
    from scenetext.recognition.model import CRNN
    from scenetext.recognition.predictor import DEFAULT_WEIGHTS, Recognizer

    if DEFAULT_WEIGHTS.is_file():
        rec, source = Recognizer.load(batch_size=64), "shipped weights"
    else:
        rec, source = Recognizer(fold_batchnorm(CRNN().eval()), batch_size=64), "untrained model (no weights shipped)"
    return {"name": f"CRNN recogniser, 32x128 crops, batches of 64 ({source})", "value": _crops_rate(rec, batches),
            "unit": "crops/s", "target": ">= 500"}


def _crops_rate(rec, batches: int) -> float:
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (32, 128, 3), dtype=np.uint8) for _ in range(64 * batches)]
    return len(crops) * _rate(lambda: rec.recognize(crops), 3, warmup=1)


WORD_CROPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rec" / "ic15_train"


def _word_crops(n: int) -> tuple[list[np.ndarray], str]:
    """``n`` crops of real words scaled to 32x128 (ICDAR 2015 training crops, used only for timing) or,
    without ../shared, random crops; and which."""
    import cv2

    paths = sorted((WORD_CROPS / "images").glob("*"))[:n] if (WORD_CROPS / "images").is_dir() else []
    crops = [cv2.resize(cv2.imread(str(p))[:, :, ::-1], (128, 32)) for p in paths]
    if len(crops) == n:
        return crops, "ICDAR 2015 training words"
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (32, 128, 3), dtype=np.uint8) for _ in range(n)], "random crops"


def bench_recognizer_lm(batches: int = 10, rounds: int = 3) -> list[dict] | None:
    """The recogniser with the language prior (``--lm``), with the prior but no near-word look-up,
    and without the prior, on the same crops of real words, in turn (the best of ``rounds`` each,
    the prior's cache emptied every time, so every word is scored afresh); None where no prior can
    be had (no shipped prior file and no wordfreq)."""
    from dataclasses import replace

    from scenetext.recognition.beam import check_lm, lm_decoder
    from scenetext.recognition.predictor import DEFAULT_WEIGHTS, Recognizer

    try:
        check_lm(True)
    except ValueError:
        return None
    if not DEFAULT_WEIGHTS.is_file():
        return None
    plain = Recognizer.load(batch_size=64)
    decoder = lm_decoder(True)
    with_lm = Recognizer(plain.model, batch_size=64, lm=decoder)
    no_near = Recognizer(plain.model, batch_size=64, lm=replace(decoder, near_words=False))
    crops, source = _word_crops(64 * batches)
    runs = {"lm": with_lm, "no_near": no_near, "plain": plain}
    for rec in runs.values():
        rec.recognize(crops[:64])
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for name, rec in runs.items():
            decoder.prior.clear_cache()
            start = time.perf_counter()
            rec.recognize(crops)
            best[name] = max(best[name], len(crops) / (time.perf_counter() - start))
    return [{"name": f"CRNN recogniser with the language prior (--lm), 32x128 {source}, batches of 64",
             "value": best["lm"], "unit": "crops/s", "target": ">= 600"},
            {"name": "  the same with the prior but no near-word look-up, in turn", "value": best["no_near"],
             "unit": "crops/s", "target": ""},
            {"name": "  the same crops without the prior, in turn with it", "value": best["plain"],
             "unit": "crops/s", "target": ""}]


def bench_recognizer_options(batches: int = 10) -> list[dict] | None:
    """The same for each optional recogniser file shipped beside the default (`weights/crnn-*.pt`)."""
    from scenetext.recognition.predictor import DEFAULT_WEIGHTS, Recognizer

    rows = []
    for path in sorted(DEFAULT_WEIGHTS.parent.glob("crnn-*.pt")):
        rec = Recognizer.load(path, batch_size=64)
        rows.append({"name": f"CRNN recogniser, same crops ({rec.config.variant} variant, {path.name})",
                     "value": _crops_rate(rec, batches), "unit": "crops/s", "target": ""})
    return rows or None


PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "det" / "ic15_test" / "images"


def _photos(n: int) -> list[Path]:
    """1280x720 street photos (ICDAR 2015 test images, used only for timing) or, without
    ../shared, synthetic scenes written to a temporary folder."""
    if PHOTOS.is_dir():
        return sorted(PHOTOS.glob("*.jpg"))[:n]
    import tempfile

    import cv2

    from scenetext.synth.datasets import SynthSceneDataset

    folder = Path(tempfile.mkdtemp(prefix="scenetext-bench-"))
    paths = []
    for i, (img, _, _) in enumerate(SynthSceneDataset(n, seed=1)):
        p = folder / f"{i:03d}.jpg"
        cv2.imwrite(str(p), cv2.resize(img, (1280, 720))[:, :, ::-1])
        paths.append(p)
    return paths


def bench_detector(n: int = 30) -> list[dict] | None:
    from scenetext.detection.predictor import DEFAULT_WEIGHTS, Detector, Zoom
    from scenetext.imageio import load_image

    if not DEFAULT_WEIGHTS.is_file():
        return None
    images = [load_image(p) for p in _photos(n)]

    def median_ms(det) -> float:
        det.detect(images[0])
        times = []
        for img in images:
            t = time.perf_counter()
            det.detect(img)
            times.append(1000 * (time.perf_counter() - t))
        return float(np.median(times))

    return [{"name": "CTPN detection, median per 1280x720 photo", "value": median_ms(Detector.load()), "unit": "ms",
             "target": "<= 200"},
            {"name": "  the same with --zoom 1400 (optional)", "value": median_ms(Detector.load(zoom=Zoom(1400))),
             "unit": "ms", "target": ""}]


def bench_end_to_end(n: int = 100) -> list[dict] | None:
    """Whole pipeline in a fresh process (so its peak memory is the pipeline's own)."""
    import json
    import subprocess

    from scenetext.detection.predictor import DEFAULT_WEIGHTS as DET
    from scenetext.recognition.predictor import DEFAULT_WEIGHTS as REC

    if not (DET.is_file() and REC.is_file()):
        return None
    code = f"""
import json, resource, sys, time
import numpy as np
from scenetext.reader import Reader
from scenetext.runtime import default_backend
paths = {json.dumps([str(p) for p in _photos(n)])}
if default_backend() == "torch":
    import torch
    torch.set_num_threads({torch.get_num_threads()})
    reader = Reader()
else:  # the shipped models' ONNX export: this process never imports torch, as a user's would not
    reader = Reader(threads={torch.get_num_threads()})
reader.read(paths[0])
per_photo = []
for p in paths[:30]:
    page = reader.read(p)
    per_photo.append((page.timings_ms["total"], page.timings_ms["detect"], page.timings_ms["recognize"]))
t = time.perf_counter()
for page in reader.read_many(paths):
    pass
rate = len(paths) / (time.perf_counter() - t)
try:  # this process's own peak (ru_maxrss would also count the parent's, inherited at fork)
    with open("/proc/self/status") as f:
        peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"median": np.median(per_photo, axis=0).tolist(), "rate": rate, "peak_mb": peak_kb / 1024,
                  "backend": reader.backend}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    total, detect, recognize = r["median"]
    return [
        {"name": f"end to end, median per 1280x720 photo (default backend: {r['backend']})", "value": total,
         "unit": "ms", "target": "<= 300"},
        {"name": "  of which detection (median)", "value": detect, "unit": "ms", "target": ""},
        {"name": "  of which recognition (median)", "value": recognize, "unit": "ms", "target": ""},
        {"name": f"folder of {n} photos (read_many)", "value": r["rate"], "unit": "images/s", "target": ""},
        {"name": "peak memory of the pipeline process", "value": r["peak_mb"], "unit": "MB", "target": "<= 500"},
    ]


def bench_folder_run(n: int = 200) -> list[dict] | None:
    """``scenetext run FOLDER -o OUT`` (the defaults: 2 reading threads) on ``n`` photos in a
    fresh process: its peak memory (the kernel's high-water mark of that process) and
    images per second from start to end, model loading included."""
    import os
    import shutil
    import subprocess
    import tempfile

    from scenetext.detection.predictor import DEFAULT_WEIGHTS as DET
    from scenetext.recognition.predictor import DEFAULT_WEIGHTS as REC

    if not (DET.is_file() and REC.is_file()):
        return None
    with tempfile.TemporaryDirectory(prefix="scenetext-folder-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        photos = _photos(n)
        for p in photos:
            shutil.copy(p, folder / p.name)
        env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
        peak_file = Path(tmp) / "peak"
        # The command as `python -m scenetext run ...`, which at exit writes its own high-water mark
        # (the rusage of a child would also count this process's memory, inherited at fork).
        launcher = ("import atexit, runpy, sys\n"
                    "def peak(path):\n"
                    "    with open('/proc/self/status') as f, open(path, 'w') as out:\n"
                    "        out.write(next(l.split()[1] for l in f if l.startswith('VmHWM')))\n"
                    "atexit.register(peak, sys.argv[1])\n"
                    "del sys.argv[1]\n"
                    "runpy.run_module('scenetext', run_name='__main__', alter_sys=True)\n")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", launcher, str(peak_file), "run", str(folder), "-o",
                               str(Path(tmp) / "out"), "--quiet"], env=env, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"scenetext run exited with {done.returncode}")
        peak_mb = int(peak_file.read_text()) / 1024
    return [{"name": f"scenetext run on a folder of {len(photos)} photos: peak memory", "value": peak_mb,
             "unit": "MB", "target": "<= 450"},
            {"name": "  the same run, images per second (model loading included)", "value": len(photos) / seconds,
             "unit": "images/s", "target": ""}]


def bench_backends(n: int = 20, batches: int = 6, batch: int = 8) -> list[dict] | None:
    """Both backends end to end on the same photos in one fresh process, in turn (so the machine's
    drift hits both alike): ``n`` photos one at a time, then ``batches`` batches of ``batch``
    photos (``read_loaded``, as a folder run reads them); None where onnxruntime is not installed."""
    import json
    import subprocess

    from scenetext.runtime import onnxruntime_available

    if not onnxruntime_available():
        return None
    code = f"""
import json, time
import numpy as np, torch
torch.set_num_threads({torch.get_num_threads()})
from scenetext.reader import Reader, load
readers = {{b: Reader(backend=b).load_models() for b in ("torch", "onnxruntime")}}
images = [load(p) for p in {json.dumps([str(p) for p in _photos(max(n, batches * batch))])}]
single = {{b: [] for b in readers}}
batched = {{b: [] for b in readers}}
for b, r in readers.items():
    r.read_loaded(images[:{batch}])
for i, image in enumerate(images[:{n}]):
    for b in (list(readers) if i % 2 else list(readers)[::-1]):
        t = time.perf_counter()
        readers[b].read_loaded([image])
        single[b].append(1000 * (time.perf_counter() - t))
for i in range({batches}):
    for b in (list(readers) if i % 2 else list(readers)[::-1]):
        t = time.perf_counter()
        readers[b].read_loaded(images[i * {batch}: (i + 1) * {batch}])
        batched[b].append(1000 * (time.perf_counter() - t) / {batch})
print(json.dumps({{"single": {{b: float(np.median(t)) for b, t in single.items()}},
                  "batched": {{b: float(np.median(t)) for b, t in batched.items()}}}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    rows = [{"name": f"end to end, {b} backend, median per photo (both in turn, {n} photos)", "value": ms,
             "unit": "ms", "target": ""} for b, ms in r["single"].items()]
    rows += [{"name": f"  the same in batches of {batch} photos (read_loaded, both in turn, {batches} batches), "
                      f"{b} backend, per photo", "value": ms, "unit": "ms", "target": ""} for b, ms in r["batched"].items()]
    return rows


def bench_profile(n: int = 20) -> list[dict] | None:
    """Where one photo's time goes, stage by stage (benchmarks/profile_stages.py)."""
    from profile_stages import rows

    return rows(n)


BENCHES = {"machine": bench_machine, "synth-words": bench_synth_words, "synth-scenes": bench_synth_scenes,
           "rec": bench_recognizer, "rec-lm": bench_recognizer_lm, "rec-options": bench_recognizer_options,
           "det": bench_detector, "e2e": bench_end_to_end, "folder": bench_folder_run,
           "backends": bench_backends, "profile": bench_profile}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("only", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHES)} (default: all)")
    ap.add_argument("--out", type=Path, help="write a Markdown table here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    unknown = set(args.only) - set(BENCHES)
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    torch.set_num_threads(args.threads)
    rows = []
    names = list(args.only or BENCHES)
    if not args.only:
        names.append("machine")  # again at the end: did the machine's speed hold?
    for name in names:
        result = BENCHES[name]()
        if result is None:
            print(f"{name}: skipped (no such weights)", flush=True)
            continue
        for row in result if isinstance(result, list) else [result]:
            rows.append(row)
            target = f"(target {row['target']})" if row["target"] else ""
            print(f"{row['name']:<62} {row['value']:>9.1f} {row['unit']:<10} {target}", flush=True)
    if args.out:
        machine = f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or platform.platform()}"
        lines = ["# Benchmarks", "", f"Machine: {machine}; Python {platform.python_version()}, torch {torch.__version__}.",
                 "Command: `make bench` (`python benchmarks/bench.py`).", "",
                 "| benchmark | value | unit | target |", "|---|---:|---|---|"]
        lines += [f"| {r['name']} | {r['value']:.1f} | {r['unit']} | {r['target']} |" for r in rows]
        lines += ["", _notes(rows)]
        args.out.write_text("\n".join(lines) + "\n" + _kept_sections(args.out))
    return 0


def _notes(rows: list[dict]) -> str:
    """The paragraph under the table: how to read this run's rows."""
    speeds = [r["value"] for r in rows if r["name"].startswith("machine:")]
    machine = (f" (fp32 matmul {speeds[0]:.0f} GFLOP/s at the start, {speeds[-1]:.0f} at the end)"
               if len(speeds) > 1 else "")
    return (f"All rows are from one run of `python benchmarks/bench.py`{machine}. This shared machine's speed "
            "swings by 2x or more between runs, so compare rows within one table. The end-to-end, folder and "
            "memory rows run in processes of their own on the default backend the end-to-end row names "
            "(onnxruntime, for the shipped models where it is installed, never imports torch).")


def _kept_sections(path: Path) -> str:
    """The sections other commands write into the same file (``make bench-peers``, ``make bench-ray``),
    kept as they are."""
    text = path.read_text() if path.is_file() else ""
    kept = ""
    for name in ("bench-peers", "bench-ray"):
        begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
        if begin in text and end in text:
            kept += "\n" + begin + text.split(begin, 1)[1].split(end, 1)[0] + end + "\n"
    return kept


if __name__ == "__main__":
    sys.exit(main())
