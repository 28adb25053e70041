"""Model files: one format for training checkpoints and shipped weights.

A file holds {"kind", "config", "state_dict", "meta"} and, for training checkpoints, the
optimiser/scheduler/RNG state under "train". Shipped weights store the state dict in fp16;
loading always gives fp32 tensors. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def save(path: str | Path, obj: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path: str | Path, kind: str | None = None) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise ValueError(f"{path}: not a scenetext model file")
    if kind is not None and obj.get("kind") != kind:
        raise ValueError(f"{path}: holds a {obj.get('kind')!r} model, expected {kind!r}")
    obj["state_dict"] = {k: v.float() if v.is_floating_point() else v for k, v in obj["state_dict"].items()}
    return obj


#: Settings a model file of each kind may carry (``meta["settings"]``) for its predictor.
SETTINGS = {"ctpn": {"score_threshold", "line_min_score", "scales", "max_side", "zoom", "line_margin"}}


class UnknownSettingError(ValueError):
    """A setting was given for a model kind that has no such setting."""


def export_weights(checkpoint: str | Path, out: str | Path, half: bool = True,
                   settings: dict | None = None) -> Path:
    """Strip training state from a checkpoint and store its weights in fp16.

    ``settings`` (e.g. ``{"score_threshold": 0.5, "scales": [900], "max_side": 1600}`` for a
    detector) are stored under
    ``meta["settings"]``: the defaults the predictor uses with these weights, for settings that
    belong to a model (a detector trained with hard negatives scores text lower, say).
    """
    ck = load(checkpoint)
    unknown = set(settings or {}) - SETTINGS.get(ck["kind"], set())
    if unknown:
        raise UnknownSettingError(f"{checkpoint}: a {ck['kind']!r} model has no setting {', '.join(sorted(unknown))}")
    sd = {k: v.half() if (half and v.is_floating_point()) else v for k, v in ck["state_dict"].items()}
    meta = dict(ck.get("meta", {}))
    if settings:
        meta["settings"] = {**meta.get("settings", {}), **settings}
    save(out, {"kind": ck["kind"], "config": ck["config"], "state_dict": sd, "meta": meta})
    return Path(out)
