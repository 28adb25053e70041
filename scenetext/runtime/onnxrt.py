"""The networks run by onnxruntime, behind the same calls the predictors make on torch models.

:class:`OnnxCTPN` stands in for a :class:`~scenetext.detection.model.CTPN` (``model(x)`` -> a
dict of arrays ``scores``, ``vertical``, ``side``; ``forward_rgb``, ``forward_many``) and
:class:`OnnxCRNN` for a :class:`~scenetext.recognition.model.CRNN` (``run_arrays(x, widths)`` ->
log-probs; ``frames``): the predictors' pre- and post-processing stay as they are. They take and
give numpy arrays, so nothing here needs torch. :class:`OnnxRuntime` builds them for one Reader
with its own session options (thread counts from the caller): it loads the shipped models from
the package's ONNX export without torch (:meth:`OnnxRuntime.load_detector`,
:meth:`OnnxRuntime.load_recognizer`), or swaps the networks of models loaded with torch
(:meth:`OnnxRuntime.attach`). onnxruntime is imported only when a session is built.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .folder import NetworkFile, read_manifest, shipped_networks

if TYPE_CHECKING:
    from ..detection.predictor import Detector
    from ..recognition.predictor import Recognizer


class _Session:
    """An onnxruntime inference session and its input and output names."""

    def __init__(self, model: bytes | str, options: Any):
        import onnxruntime as ort

        self.session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, **inputs: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.outputs, inputs)


def _array(x: Any, dtype=np.float32) -> np.ndarray:
    """An array or a (CPU) torch tensor as a contiguous array of ``dtype``."""
    if hasattr(x, "detach"):
        x = x.detach().numpy()
    return np.ascontiguousarray(x, dtype=dtype)


class OnnxCTPN:
    """The detector network on onnxruntime; ``config`` is the torch model's. Outputs are arrays."""

    def __init__(self, session: _Session, config: Any):
        self.session, self.config = session, config

    def eval(self) -> "OnnxCTPN":
        return self

    def __call__(self, x: Any) -> dict[str, np.ndarray]:
        """``x`` ``(B, 3, H, W)`` normalised (an array or a tensor), ``H`` and ``W`` multiples of 16."""
        if x.shape[2] % 16 or x.shape[3] % 16:
            raise ValueError(f"the ONNX detector takes sizes padded to multiples of 16, got {tuple(x.shape)}")
        scores, vertical, side = self.session.run(image=_array(x))
        return {"scores": scores, "vertical": vertical, "side": side}

    @staticmethod
    def normalize(rgb: np.ndarray, pad_to: int = 1) -> np.ndarray:
        """This network's input for one uint8 RGB image ``(H, W, 3)``:
        :func:`~scenetext.detection.inputs.normalized_planes`."""
        from ..detection.inputs import normalized_planes

        return normalized_planes(rgb, pad_to)

    def forward_rgb(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`__call__` of one uint8 RGB image ``(H, W, 3)``, normalised and padded to
        multiples of 16 (in one pass; the torch model runs its first layers in strips)."""
        return self(self.normalize(rgb, pad_to=16))

    def forward_many(self, images: list[Any]) -> list[dict[str, np.ndarray]]:
        """What :meth:`__call__` gives each image (the torch model batches their BiLSTM rows, with
        the same results)."""
        return [self(x) for x in images]


class OnnxCRNN:
    """A CRNN (recogniser or word splitter) on onnxruntime; ``config`` is the torch model's."""

    def __init__(self, session: _Session, config: Any):
        self.session, self.config = session, config

    def eval(self) -> "OnnxCRNN":
        return self

    def frames(self, widths: Any) -> np.ndarray:
        """Number of output frames for input widths (pixels), as :meth:`CRNN.frames`."""
        from ..recognition.preprocess import FRAME_STRIDE

        return np.maximum(_array(widths, np.int64) // FRAME_STRIDE, 1)

    def run_arrays(self, x: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """Log-probabilities ``(W // 4, B, classes)`` of a padded float32 batch ``(B, C, 32, W)``
        and its int64 widths ``(B,)``."""
        (log_probs,) = self.session.run(image=_array(x), widths=_array(widths, np.int64))
        return log_probs

    def __call__(self, x: Any, widths: Any = None) -> np.ndarray:
        """:meth:`run_arrays` of an array or tensor batch (all of its width when ``widths`` is None)."""
        if widths is None:
            widths = np.full((x.shape[0],), x.shape[3], dtype=np.int64)
        return self.run_arrays(_array(x), _array(widths, np.int64))


def _default_threads() -> int:
    """onnxruntime's thread count when none is given: torch's where torch is in use (the command
    line and benchmarks set it), else one per core this process may run on."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class OnnxRuntime:
    """Builds onnxruntime stand-ins for a detector's and a recogniser's networks.

    Args:
        threads: onnxruntime's intra-op threads (default: torch's thread count where torch is
            in use, which the command line and benchmarks set; else one per core).
        folder: a folder written by ``scenetext export --onnx`` to load the networks from; its
            manifest must match the weights being run. ``None`` exports them in memory when
            they are attached (a few seconds per Reader); the shipped models need neither
            (:meth:`load_detector`, :meth:`load_recognizer`).
    """

    threads: int | None = None
    folder: str | Path | None = None

    def options(self) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads or _default_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Without the arena, the feature maps' memory goes back after each call: ~85 MB less resident
        # over a run of photos, at no measurable cost in time (1280x720 photos, 2 threads).
        opts.enable_cpu_mem_arena = False
        # Idle pool threads sleep instead of spinning: a photo goes through three sessions with a
        # pool each and Python work in between, and spinning threads took the cores from them
        # (1280x720 photos, 2 cores, median per photo 162-178 ms spinning, 110-114 ms not).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        return opts

    def _model(self, name: str, model: Any, manifest: dict[str, NetworkFile] | None) -> bytes | str:
        from .export import onnx_of, weights_digest

        if manifest is None:
            return onnx_of(name, model)
        entry = manifest.get(name)
        if entry is None:
            raise ValueError(f"{self.folder}: no {name} network in this ONNX export")
        if entry.digest != weights_digest(model):
            raise ValueError(f"{self.folder}/{entry.file} was exported from other {name} weights than the ones "
                             "loaded; export again with 'scenetext export --onnx'")
        return str(Path(self.folder) / entry.file)  # type: ignore[arg-type]

    def attach(self, detector: "Detector | None" = None, recognizer: "Recognizer | None" = None) -> None:
        """Swap the networks of a loaded detector (and its word splitter) and recogniser for
        onnxruntime sessions, in place."""
        from ..detection.splitter import WordSplitter

        manifest = read_manifest(self.folder) if self.folder is not None else None
        opts = self.options()
        if detector is not None:
            detector.model = OnnxCTPN(_Session(self._model("ctpn", detector.model, manifest), opts),
                                      detector.model.config)
            if isinstance(detector.word_split, WordSplitter):
                frames = detector.word_split._frames
                frames.model = OnnxCRNN(_Session(self._model("wordsplit", frames.model, manifest), opts),
                                        frames.model.config)
        if recognizer is not None:
            recognizer.model = OnnxCRNN(_Session(self._model("crnn", recognizer.model, manifest), opts),
                                        recognizer.model.config)

    # -------------------------------------------------------------- the shipped models, without torch

    def load_detector(self, **kwargs) -> "Detector":
        """The shipped detector and word splitter on onnxruntime, from the package's ONNX export
        (:func:`~.folder.shipped_networks`) with the settings the package manifest stores with
        their weights: what ``Detector.load()`` gives, without importing torch. ``kwargs`` are
        :meth:`Detector.load`'s (``word_split`` other than ``"auto"`` replaces the splitter)."""
        from .. import shipped
        from ..detection.inputs import CTPNConfig
        from ..detection.predictor import Detector

        wants_splitter = kwargs.get("word_split", "auto") == "auto"
        nets = shipped_networks(("ctpn", "wordsplit") if wants_splitter else ("ctpn",))
        opts = self.options()
        if wants_splitter:
            kwargs["word_split"] = self._splitter(*nets["wordsplit"], opts)
        path, entry = nets["ctpn"]
        model = OnnxCTPN(_Session(str(path), opts), CTPNConfig.from_dict(entry.config))
        return Detector.from_network(model, entry.source, shipped.find("ctpn").settings, **kwargs)

    def load_recognizer(self, **kwargs) -> "Recognizer":
        """The shipped recogniser on onnxruntime, from the package's ONNX export: what
        ``Recognizer.load(**kwargs)`` gives, without importing torch."""
        from ..recognition.config import CRNNConfig
        from ..recognition.predictor import Recognizer

        path, entry = shipped_networks(("crnn",))["crnn"]
        model = OnnxCRNN(_Session(str(path), self.options()), CRNNConfig.from_dict(entry.config))
        return Recognizer.from_network(model, entry.source, **kwargs)

    @staticmethod
    def _splitter(path: Path, entry: NetworkFile, opts: Any):
        from .. import shipped
        from ..detection.splitter import SplitConfig, WordSplitter
        from ..recognition.config import CRNNConfig

        model = OnnxCRNN(_Session(str(path), opts), CRNNConfig.from_dict(entry.config))
        return WordSplitter(model, config=SplitConfig(**shipped.find("wordsplit").settings),
                            name=f"wordsplit-{model.config.variant}:{entry.source}")


__all__ = ["OnnxCRNN", "OnnxCTPN", "OnnxRuntime"]
