"""The networks run by onnxruntime, behind the same calls the predictors make on torch models.

:class:`OnnxCTPN` stands in for a :class:`~scenetext.detection.model.CTPN` (``model(x)`` -> a
dict of ``scores``, ``vertical``, ``side``; ``forward_many``) and :class:`OnnxCRNN` for a
:class:`~scenetext.recognition.model.CRNN` (``model(x, widths)`` -> log-probs; ``frames``): the
predictors' pre- and post-processing stay as they are. :class:`OnnxRuntime` builds them for one
Reader with its own session options (thread counts from the caller); onnxruntime is imported
only when one is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .export import NetworkFile, networks_of, onnx_of, read_manifest, weights_digest

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


def _array(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().numpy(), dtype=np.float32)


class OnnxCTPN:
    """The detector network on onnxruntime; ``config`` is the torch model's."""

    def __init__(self, session: _Session, config: Any):
        self.session, self.config = session, config

    def eval(self) -> "OnnxCTPN":
        return self

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` ``(B, 3, H, W)`` normalised, ``H`` and ``W`` multiples of 16 (``normalize(pad_to=16)``)."""
        if x.shape[2] % 16 or x.shape[3] % 16:
            raise ValueError(f"the ONNX detector takes sizes padded to multiples of 16, got {tuple(x.shape)}")
        scores, vertical, side = self.session.run(image=_array(x))
        return {"scores": torch.from_numpy(scores), "vertical": torch.from_numpy(vertical),
                "side": torch.from_numpy(side)}

    def forward_rgb(self, rgb: np.ndarray) -> dict[str, torch.Tensor]:
        """:meth:`__call__` of one uint8 RGB image ``(H, W, 3)``, normalised and padded to
        multiples of 16 (in one pass; the torch model runs its first layers in strips)."""
        from ..detection.model import normalize

        return self(normalize(rgb, pad_to=16))

    def forward_many(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """What :meth:`__call__` gives each image (the torch model batches their BiLSTM rows, with
        the same results)."""
        return [self(x) for x in images]


class OnnxCRNN:
    """A CRNN (recogniser or word splitter) on onnxruntime; ``config`` is the torch model's."""

    def __init__(self, session: _Session, config: Any):
        self.session, self.config = session, config

    def eval(self) -> "OnnxCRNN":
        return self

    def frames(self, widths: torch.Tensor) -> torch.Tensor:
        """Number of output frames for input widths (pixels), as :meth:`CRNN.frames`."""
        return torch.div(widths, 4, rounding_mode="floor").clamp(min=1)

    def __call__(self, x: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        if widths is None:
            widths = torch.full((x.shape[0],), x.shape[3], dtype=torch.long)
        (log_probs,) = self.session.run(image=_array(x), widths=widths.to(torch.long).numpy())
        return torch.from_numpy(log_probs)


@dataclass(frozen=True)
class OnnxRuntime:
    """Builds onnxruntime stand-ins for a detector's and a recogniser's networks.

    Args:
        threads: onnxruntime's intra-op threads (default: torch's thread count, which the
            command line and benchmarks set).
        folder: a folder written by ``scenetext export --onnx`` to load the networks from; its
            manifest must match the weights being run. ``None`` exports them in memory when
            they are attached (a few seconds per Reader).
    """

    threads: int | None = None
    folder: str | Path | None = None

    def options(self) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Without the arena, the feature maps' memory goes back after each call: ~85 MB less resident
        # over a run of photos, at no measurable cost in time (1280x720 photos, 2 threads).
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 3
        return opts

    def _model(self, name: str, model: torch.nn.Module, manifest: dict[str, NetworkFile] | None) -> bytes | str:
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


__all__ = ["OnnxCRNN", "OnnxCTPN", "OnnxRuntime", "networks_of"]
