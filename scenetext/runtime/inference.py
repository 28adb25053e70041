"""The context a network runs inference in, whichever runtime it is on, without importing torch
for a network that does not need it."""

from __future__ import annotations

import contextlib
import sys
from typing import Any


def inference(model: Any):
    """``torch.inference_mode()`` for a torch module (no autograd records), a context that does
    nothing for any other network (an onnxruntime session)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return torch.inference_mode()
    return contextlib.nullcontext()
