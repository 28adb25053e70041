"""ONNX export of the networks as the predictors load them (``scenetext export --onnx DIR``).

Each network is traced through its export graph (:mod:`.graphs`) with dynamic sizes: the detector
takes any batch, height and width (multiples of 16), the recogniser and the word splitter any
batch and width. :func:`export_onnx` writes a folder as :mod:`.folder` describes it, with a
digest of the weights each network came from (:func:`scenetext.nn.weights_digest`: of the
weights as the model file holds them, before BatchNorm folding), so a folder is never run with
other weights than the ones it came from.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..nn import weights_digest
from .folder import MANIFEST, NETWORKS, OPSET, NetworkFile, read_manifest
from .graphs import CRNNGraph, CTPNGraph

if TYPE_CHECKING:
    from ..detection.model import CTPN
    from ..detection.predictor import Detector
    from ..recognition.model import CRNN
    from ..recognition.predictor import Recognizer

__all__ = ["MANIFEST", "NETWORKS", "OPSET", "NetworkFile", "export_onnx", "networks_of", "onnx_of", "read_manifest",
           "weights_digest"]


def _trace(graph: torch.nn.Module, args: tuple, inputs: list[str], outputs: list[str], axes: dict) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about shapes turned into constants we do not use
        torch.onnx.export(graph.eval(), args, buf, dynamo=False, opset_version=OPSET, input_names=inputs,
                          output_names=outputs, dynamic_axes=axes, do_constant_folding=True)
    return buf.getvalue()


def _plain_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy in the default memory layout (the loaded models are channels-last)."""
    return copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)


def ctpn_onnx(model: "CTPN") -> bytes:
    """The detector network as ONNX: ``image`` ``(B, 3, H, W)`` -> ``scores``, ``vertical``, ``side``."""
    graph = CTPNGraph(_plain_copy(model))
    axes = {"image": {0: "batch", 2: "height", 3: "width"}}
    axes.update({k: {0: "batch", 1: "rows", 2: "cols"} for k in ("scores", "vertical", "side")})
    return _trace(graph, (torch.zeros(1, 3, 64, 96),), ["image"], ["scores", "vertical", "side"], axes)


def crnn_onnx(model: "CRNN") -> bytes:
    """A CRNN (recogniser or word splitter) as ONNX: ``image`` ``(B, C, 32, W)`` and ``widths``
    ``(B,)`` int64 -> ``log_probs`` ``(W // 4, B, classes)``."""
    graph = CRNNGraph(_plain_copy(model))
    x = torch.zeros(2, model.config.in_channels, 32, 64)
    axes = {"image": {0: "batch", 3: "width"}, "widths": {0: "batch"}, "log_probs": {0: "frames", 1: "batch"}}
    return _trace(graph, (x, torch.tensor([64, 40])), ["image", "widths"], ["log_probs"], axes)


def networks_of(detector: "Detector", recognizer: "Recognizer") -> dict[str, torch.nn.Module]:
    """The torch networks behind a detector and a recogniser, by name (no word splitter when the
    detector cuts words another way)."""
    from ..detection.splitter import WordSplitter

    nets = {"ctpn": detector.model}
    if isinstance(detector.word_split, WordSplitter):
        nets["wordsplit"] = detector.word_split._frames.model
    nets["crnn"] = recognizer.model
    return nets


#: In-memory exports by (network name, weights digest): a second Reader of the same weights in
#: a process does not trace them again.
_EXPORTED: dict[tuple[str, str], bytes] = {}


def onnx_of(name: str, model: torch.nn.Module) -> bytes:
    """The network ``name`` (one of :data:`NETWORKS`) of ``model`` as ONNX bytes."""
    key = (name, weights_digest(model))
    if key not in _EXPORTED:
        _EXPORTED[key] = ctpn_onnx(model) if name == "ctpn" else crnn_onnx(model)  # type: ignore[arg-type]
    return _EXPORTED[key]


def export_onnx(out_dir: str | Path, detector: "Detector | None" = None,
                recognizer: "Recognizer | None" = None) -> list[Path]:
    """Write the networks of ``detector`` and ``recognizer`` (default: the shipped ones, whose
    model files the manifest then names, so the folder can stand in for them without torch: see
    :func:`~.folder.shipped_networks`) as ONNX into ``out_dir`` with their manifest; returns the
    files written."""
    from .. import shipped

    sources: set[str] = set()
    if detector is None:
        from ..detection.predictor import Detector

        detector = Detector.load()
        sources |= {"ctpn", "wordsplit"}  # its word splitter, when it has one, is the shipped one too
    if recognizer is None:
        from ..recognition.predictor import Recognizer

        recognizer = Recognizer.load()
        sources.add("crnn")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, entries = [], []
    for name, model in networks_of(detector, recognizer).items():
        path = out / f"{name}.onnx"
        path.write_bytes(onnx_of(name, model))
        written.append(path)
        source = shipped.find(name) if name in sources else None
        entries.append(NetworkFile(name, path.name, weights_digest(model), model.config.to_dict(),
                                   sha256=shipped.sha256(path), source=source.file if source else "",
                                   source_sha256=source.sha256 if source else ""))
    manifest = out / MANIFEST
    manifest.write_text(json.dumps({"opset": OPSET, "networks": [e.__dict__ for e in entries]}, indent=2) + "\n")
    return written + [manifest]
