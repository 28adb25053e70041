"""Where the networks run: ``"torch"`` (the models as loaded) or ``"onnxruntime"`` (the same
weights exported to ONNX, :mod:`.export`, and run by :mod:`.onnxrt`). The predictors keep their
pre- and post-processing either way; only the network forward is swapped.

Nothing here imports onnxruntime or onnx: :func:`onnxruntime_available` only looks for it.
"""

from __future__ import annotations

import importlib.util

BACKENDS = ("torch", "onnxruntime")


def onnxruntime_available() -> bool:
    """Whether the optional ``onnxruntime`` package is installed (``pip install scenetext[onnx]``)."""
    return importlib.util.find_spec("onnxruntime") is not None


#: The backend of ``backend=None``. Measured with both in turn on the same photos in one process
#: on a quiet 2-core machine (``python benchmarks/bench.py backends``): torch 136-144 ms per
#: photo, onnxruntime 141-150 ms, and torch's process peaks lower, so torch is the default even
#: where onnxruntime is installed.
DEFAULT_BACKEND = "torch"


def resolve_backend(backend: str | None) -> str:
    """The backend to run: ``backend`` itself, checked, or for ``None`` :data:`DEFAULT_BACKEND`."""
    if backend is None:
        return DEFAULT_BACKEND
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
