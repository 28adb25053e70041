"""Where the networks run: ``"torch"`` (the models as loaded) or ``"onnxruntime"`` (the same
weights exported to ONNX, :mod:`.export`, and run by :mod:`.onnxrt`). The predictors keep their
pre- and post-processing either way; only the network forward is swapped. The shipped models
also ship as ONNX (``scenetext/models/onnx/``, :mod:`.folder`): on onnxruntime they load and run
without importing torch, which is faster and takes less memory, so that is the default where
onnxruntime is installed (:func:`default_backend`).

Nothing here imports onnxruntime or onnx: :func:`onnxruntime_available` only looks for it.
"""

from __future__ import annotations

import importlib.util

BACKENDS = ("torch", "onnxruntime")


def onnxruntime_available() -> bool:
    """Whether the optional ``onnxruntime`` package is installed (``pip install scenetext[onnx]``)."""
    return importlib.util.find_spec("onnxruntime") is not None


def shipped_export_present() -> bool:
    """Whether the package holds the ONNX export of its shipped models (``scenetext/models/onnx/``;
    checked against the models when loaded, :func:`.folder.shipped_networks`)."""
    from ..shipped import models_dir

    return (models_dir() / "onnx" / "manifest.json").is_file()


def default_backend(shipped_models: bool = True) -> str:
    """The backend of ``backend=None``: ``"onnxruntime"`` for the shipped models where onnxruntime
    is installed (they run from the package's ONNX export without importing torch), else
    ``"torch"``. Measured side by side on 20 ICDAR 2015 photos at 2 threads (``make bench-peers``),
    onnxruntime read them in 0.144 s per photo at a 238 MB peak, torch in 0.156 s at 398 MB.
    Other weights run on torch unless asked: onnxruntime would first export them, in memory,
    with torch loaded beside it."""
    if shipped_models and onnxruntime_available() and shipped_export_present():
        return "onnxruntime"
    return "torch"


def resolve_backend(backend: str | None, shipped_models: bool = True) -> str:
    """The backend to run: ``backend`` itself, checked, or for ``None`` :func:`default_backend`
    (``shipped_models``: whether the models to run are the shipped ones)."""
    if backend is None:
        return default_backend(shipped_models)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "onnxruntime" and not onnxruntime_available():
        raise ValueError("backend 'onnxruntime' needs the onnxruntime package: pip install 'scenetext[onnx]'")
    return backend


def network_runtime(backend: str, folder=None, threads: int | None = None):
    """What swaps the networks of loaded models for ``backend``: an
    :class:`~.onnxrt.OnnxRuntime` (networks from ``folder``, an ``export --onnx`` folder, or
    exported in memory when it is ``None``), or ``None`` for torch, which needs no swap."""
    if backend == "torch":
        if folder is not None:
            raise ValueError("an ONNX folder applies only to the onnxruntime backend")
        return None
    from .onnxrt import OnnxRuntime

    return OnnxRuntime(threads=threads, folder=folder)
