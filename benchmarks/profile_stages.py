"""Where the time of one photo goes, stage by stage (`make bench` row group "profile", or
`python benchmarks/profile_stages.py [--photos N]`).

The default pipeline on each backend (``Reader(backend=...)``; on torch the detector's parts are
timed one by one, on onnxruntime each network is one call) reads N photos one at a time from their files; each stage is
timed by wrapping the function that does it, exclusive of the stages it calls; what word
splitting calls (its own network) counts as word splitting. The stages add up to the
total; what no stage covers (the Reader's bookkeeping, building results) is "other".
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

#: (stage, module path, attribute): the functions timed, in pipeline order.
STAGES = [
    ("decode", "scenetext.reader", "load_image"),
    ("resize", "scenetext.detection.predictor", "resize_for_scale"),
    ("normalize", "scenetext.detection.model", "_normalized"),  # torch
    ("normalize", "scenetext.detection.inputs", "normalized_planes"),  # onnxruntime (OnnxCTPN.normalize)
    ("detector network (onnxruntime)", "scenetext.runtime.onnxrt", "OnnxCTPN.__call__"),
    ("detector backbone", "scenetext.detection.model", "CTPN._features_rgb"),  # in strips, less normalize
    ("detector backbone", "scenetext.detection.model", "CTPN._features"),  # the zoom's crops
    ("detector BiLSTM", "scenetext.detection.model", "CTPN._from_features"),  # less the heads
    ("detector heads", "scenetext.detection.model", "CTPN._outputs"),
    ("proposals", "scenetext.detection.predictor", "Detector._decode"),
    ("line building", "scenetext.detection.predictor", "Detector._lines"),
    ("word splitting", "scenetext.detection.predictor", "Detector._cut"),
    ("crops", "scenetext.reader", "crop_line"),
    ("crops", "scenetext.reader", "split_crop"),
    ("recogniser: resize crops", "scenetext.recognition.predictor", "prepare_crop"),
    ("recogniser: network", "scenetext.recognition.model", "CRNN.forward"),
    ("recogniser: network", "scenetext.runtime.onnxrt", "OnnxCRNN.run_arrays"),
    ("recogniser: CTC decoding", "scenetext.recognition.predictor", "Recognizer.decode"),
]

#: Stages whose callees count as their own time.
ABSORBING = {"word splitting"}


@dataclass
class StageClock:
    """Exclusive time per stage: a stage's time less that of the stages it calls."""

    totals: dict[str, float] = field(default_factory=dict)
    _stack: list[list] = field(default_factory=list)  # [stage, start, time in children]

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        frame = [name, time.perf_counter(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - frame[1]
            self.totals[name] = self.totals.get(name, 0.0) + elapsed - frame[2]
            if self._stack:
                self._stack[-1][2] += elapsed

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            if self._stack and self._stack[-1][0] in ABSORBING:
                return fn(*args, **kwargs)
            with self.stage(name):
                return fn(*args, **kwargs)

        timed.__wrapped__ = fn
        return timed


@contextlib.contextmanager
def timed_stages(clock: StageClock) -> Iterator[None]:
    """Wrap every function of :data:`STAGES` for the duration; the originals come back after."""
    import importlib

    undo = []
    for name, module_name, attr in STAGES:
        owner = importlib.import_module(module_name)
        *path, leaf = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = owner.__dict__[leaf] if leaf in getattr(owner, "__dict__", {}) else getattr(owner, leaf)
        setattr(owner, leaf, clock.wrap(name, original))
        undo.append((owner, leaf, original))
    try:
        yield
    finally:
        for owner, leaf, original in reversed(undo):
            setattr(owner, leaf, original)


def profile(paths: list[Path], threads: int | None = None, backend: str = "torch") -> dict[str, float]:
    """Mean milliseconds per photo for each stage the backend goes through (and ``other``,
    ``total``) over ``paths``."""
    import torch

    from scenetext.reader import Reader

    if threads:
        torch.set_num_threads(threads)
    reader = Reader(backend=backend)
    reader.read(paths[0])  # warm-up: models loaded, kernels chosen
    clock = StageClock()
    with timed_stages(clock):
        start = time.perf_counter()
        for path in paths:
            with clock.stage("other"):
                reader.read(path)
        total = time.perf_counter() - start
    per_photo = {name: 1000 * t / len(paths) for name, t in clock.totals.items()}
    ordered = {name: per_photo[name] for name, _, _ in STAGES if name in per_photo}
    ordered["other"] = per_photo.get("other", 0.0)
    ordered["total"] = 1000 * total / len(paths)
    return ordered


def rows(n: int = 20) -> list[dict] | None:
    """``make bench`` rows: each stage's mean time per 1280x720 photo and its share, for each
    backend (onnxruntime where it is installed)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import _photos

    from scenetext.runtime import onnxruntime_available

    paths = _photos(n)
    if not paths:
        return None
    out = []
    for backend in ("torch", "onnxruntime") if onnxruntime_available() else ("torch",):
        stages = profile(paths, backend=backend)
        total = stages["total"]
        out.append({"name": f"profile ({backend} backend): one photo at a time, mean of {len(paths)} (total)",
                    "value": total, "unit": "ms", "target": ""})
        out += [{"name": f"  {name} ({100 * ms / total:.0f} %)", "value": ms, "unit": "ms", "target": ""}
                for name, ms in stages.items() if name != "total"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    for row in rows(args.photos) or []:
        print(f"{row['name']:<52} {row['value']:>8.1f} {row['unit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
