"""Recognizer: loads a CRNN model file and reads crops in width-sorted, padded batches."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..runtime.inference import inference
from ..shipped import model_path, models_dir
from .config import CRNNConfig
from .decode import Decoded, Lexicon, beam_decode, greedy_decode, lexicon_decode
from .orientation import TALL_RATIO, is_tall, rotate
from .preprocess import FRAME_STRIDE, pad_arrays, prepare_crop, width_batches

if TYPE_CHECKING:
    from .beam import PriorDecoder
    from .model import CRNN

#: The shipped default recogniser inside the package (loaded after checking its manifest entry).
DEFAULT_WEIGHTS = models_dir() / "crnn.pt"


class Recognizer:
    def __init__(self, model: "CRNN", batch_size: int = 64, max_width: int = 1024, decoder: str = "greedy",
                 lexicon: Lexicon | None = None, name: str = "crnn", max_batch_columns: int = 64 * 128,
                 rotate_tall: float | None = TALL_RATIO, lm: PriorDecoder | None = None):
        self.model = model.eval()
        self.config: CRNNConfig = model.config
        self.charset = self.config.charset
        self.batch_size = batch_size
        # Bounds one forward pass: 64 crops of 128 columns need ~20 MB of activations, while 64
        # padded to 1,024 columns needed ~140 MB and set the pipeline's peak memory (and batches
        # of 8,192 columns read a folder's crops no slower than batches of 16,384).
        self.max_batch_columns = max_batch_columns
        self.max_width = max_width
        self.decoder = decoder
        self.lexicon = lexicon
        # A language prior re-ranking the readings the frames support (scenetext.recognition.beam);
        # a lexicon, when given, decides instead.
        self.lm = lm
        self.name = name
        # Crops at least this many times taller than wide are also read turned 90 degrees each
        # way and the most confident reading is kept (None: read every crop as it is).
        self.rotate_tall = rotate_tall

    @classmethod
    def load(cls, path: str | Path | None = None, kind: str = "crnn", **kwargs) -> "Recognizer":
        """Load a model file (default: the shipped ``crnn.pt``, verified against its manifest) for
        inference: BatchNorms folded, channels-last. ``kind``: see :meth:`CRNN.load`."""
        from .model import CRNN

        path = Path(path) if path else model_path("crnn")
        return cls.from_network(cls.prepare(CRNN.load(path, kind=kind)), path.name, **kwargs)

    @classmethod
    def from_network(cls, model, file_name: str, **kwargs) -> "Recognizer":
        """A recogniser around a network made for inference (:meth:`prepare`, or an onnxruntime
        session, :mod:`scenetext.runtime.onnxrt`); ``file_name`` names it in results."""
        lm = kwargs.get("lm")
        kwargs.setdefault("name", f"crnn-{model.config.variant}:{file_name}" + (f"+lm-{lm.prior.name}" if lm else ""))
        return cls(model, **kwargs)

    @staticmethod
    def prepare(model: "CRNN") -> "CRNN":
        """A trained CRNN made ready for inference, in place: eval mode, BatchNorms folded,
        channels-last (oneDNN convolutions run ~25 % faster on it, same results)."""
        import torch

        from ..nn import fold_batchnorm

        model.eval()
        fold_batchnorm(model)
        model.to(memory_format=torch.channels_last)
        return model

    def log_probs(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Per-crop (T_i, classes) log-probabilities; crops are batched by width."""
        prepared = [prepare_crop(c, max_width=self.max_width) for c in crops]
        out: list[np.ndarray | None] = [None] * len(crops)
        batches = width_batches([p.shape[1] for p in prepared], self.batch_size, self.max_batch_columns)
        # Widest batch first: each later batch's buffers fit in the heap space the earlier ones freed
        # (narrowest first, each bigger one would grow the heap past the holes of the last).
        with inference(self.model):
            for idx in reversed(batches):
                x, widths = pad_arrays([prepared[i] for i in idx])
                lp = self._forward(x, widths)
                frames = np.maximum(widths // FRAME_STRIDE, 1).tolist()
                for j, i in enumerate(idx):
                    out[i] = lp[: frames[j], j].copy()  # not a view: the batch's output goes now
                del x, lp
        return out  # type: ignore[return-value]

    def _forward(self, x: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """The network on a padded batch ``(B, 1, 32, W)`` and its widths: ``(W / 4, B, classes)``
        log-probabilities (a network with ``run_arrays`` takes the arrays as they are)."""
        run = getattr(self.model, "run_arrays", None)
        if run is not None:
            return run(x, widths)
        import torch

        batch = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        return self.model(batch, torch.from_numpy(widths)).numpy()

    def decode(self, log_probs: np.ndarray) -> Decoded:
        if self.lexicon is not None:
            return lexicon_decode(log_probs, self.charset, self.lexicon)
        if self.lm is not None:
            return self.lm.decode(log_probs, self.charset)
        if self.decoder == "beam":
            return beam_decode(log_probs, self.charset)
        return greedy_decode(log_probs, self.charset)

    def recognize(self, crops: list[np.ndarray], orient: bool = True) -> list[Decoded]:
        """Read RGB (or gray) uint8 crops of any size; returns text, confidence, char positions.

        With `orient`, a tall crop (see `rotate_tall`) is read as it is and turned 90 degrees
        clockwise and counter-clockwise, all in the same batches, and keeps its most confident
        reading (``Decoded.rotation`` says which). Callers that have already turned their crops
        upright from geometry, like the Reader, pass ``orient=False``.
        """
        if not crops:
            return []
        n = len(crops)
        tall = [i for i, c in enumerate(crops) if orient and is_tall(c, self.rotate_tall)]
        turned = [rotate(crops[i], d) for i in tall for d in (90, 270)]
        decoded = [self.decode(lp) for lp in self.log_probs(list(crops) + turned)]
        out = decoded[:n]
        for k, i in enumerate(tall):
            options = [(0, out[i]), (90, decoded[n + 2 * k]), (270, decoded[n + 2 * k + 1])]
            degrees, best = max(options, key=lambda o: o[1].confidence)  # a tie keeps the crop as it is
            best.rotation = degrees
            out[i] = best
        return out
