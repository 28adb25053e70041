"""Model files: one format for training checkpoints and shipped weights.

A file holds {"kind", "config", "state_dict", "meta"} and, for training checkpoints, the
optimiser/scheduler/RNG state under "train". Shipped weights store the state dict in fp16;
loading always gives fp32 tensors. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import os
import pickle
import stat
import tempfile
from pathlib import Path, PurePath

import torch

#: Values a model file may hold besides tensors: nothing that unpickling could turn into code.
PLAIN = (str, int, float, bool, type(None))


class ModelFileError(ValueError):
    """A model file that cannot be loaded: missing, not a regular file, not a scenetext model
    file, or holding objects other than tensors, numbers, strings, lists and dicts. The message
    is one line and names the file."""


def plain(obj, where: str = "file"):
    """``obj`` with every value turned into a type a ``weights_only`` load accepts: tensors,
    numbers, strings, ``None``, lists, tuples and dicts with string keys; paths become strings.
    Raises ``TypeError`` naming the first other value, so no file is written that the loader
    would refuse."""
    if isinstance(obj, torch.Tensor) or isinstance(obj, PLAIN):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}, not a string")
            out[key] = plain(value, f"{where}[{key!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(value, f"{where}[{i}]") for i, value in enumerate(obj))
    raise TypeError(f"{where} is a {type(obj).__name__}, which a model file cannot hold")


def save(path: str | Path, obj: dict) -> None:
    """Write ``obj`` (plain values only, see :func:`plain`) atomically to ``path``."""
    path = Path(path)
    obj = plain(obj, "model file")
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


def _check_regular_file(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ModelFileError(f"{path}: model file not found") from None
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read the model file: {err.strerror or err}") from None
    if not stat.S_ISREG(mode):
        raise ModelFileError(f"{path}: not a regular file")


def load(path: str | Path, kind: str | None = None) -> dict:
    """Read a model file with ``torch.load(weights_only=True)``: it can hold tensors, numbers,
    strings, lists and dicts only, and nothing in it runs when it is read. Any other file is
    refused with a :class:`ModelFileError` whose one-line message names it."""
    path = Path(path)
    _check_regular_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only load failed" in str(err).lower():
            raise ModelFileError(f"{path}: refused: it holds objects other than tensors, numbers, strings, "
                                 "lists and dicts (a model file that could run code when loaded)") from None
        raise ModelFileError(f"{path}: not a readable model file (not a saved torch file)") from None
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a file that is not its own
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(f"{path}: not a readable model file ({first[:120]})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        raise ModelFileError(f"{path}: not a scenetext model file")
    if kind is not None and obj.get("kind") != kind:
        raise ModelFileError(f"{path}: holds a {obj.get('kind')!r} model, expected {kind!r}")
    state = obj["state_dict"]
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: not a scenetext model file (its state_dict holds non-tensors)")
    obj["state_dict"] = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return obj


#: Settings a model file of each kind may carry (``meta["settings"]``) for its predictor.
SETTINGS = {"ctpn": {"score_threshold", "line_min_score", "scales", "max_side", "zoom", "line_margin",
                  "line_builder", "read_line_min_score"},
            "wordsplit": {"threshold", "min_gap", "min_word", "drop_empty", "trim_lines", "line_gap"}}


class UnknownSettingError(ValueError):
    """A setting was given for a model kind that has no such setting."""


def average_weights(checkpoints: list[dict], names: list[str]) -> dict:
    """The element-wise mean of the floating-point weights of ``checkpoints`` (loaded with
    :func:`load`; integer buffers such as counters from the first): a uniform "model soup" of
    models fine-tuned from one another. They must be of one kind and configuration; else a
    :class:`ModelFileError` names the one that differs."""
    first = checkpoints[0]
    for ck, name in zip(checkpoints[1:], names[1:]):
        if ck["kind"] != first["kind"] or ck["config"] != first["config"] or ck["state_dict"].keys() != \
                first["state_dict"].keys():
            raise ModelFileError(f"{name}: not the same kind and configuration of model as {names[0]}, "
                                 "so their weights cannot be averaged")
    n = len(checkpoints)
    return {k: sum(ck["state_dict"][k] for ck in checkpoints) / n if v.is_floating_point() else v
            for k, v in first["state_dict"].items()}


def export_weights(checkpoint: str | Path, out: str | Path, half: bool = True,
                   settings: dict | None = None, average: list[str | Path] = ()) -> Path:
    """Strip training state from a checkpoint and store its weights in fp16.

    ``settings`` (e.g. ``{"score_threshold": 0.5, "scales": [900], "max_side": 1600}`` for a
    detector) are stored under
    ``meta["settings"]``: the defaults the predictor uses with these weights, for settings that
    belong to a model (a detector trained with hard negatives scores text lower, say).
    With ``average`` the weights written are the mean of the checkpoint's and those files'
    (:func:`average_weights`); ``meta["averaged"]`` names them.
    """
    ck = load(checkpoint)
    unknown = set(settings or {}) - SETTINGS.get(ck["kind"], set())
    if unknown:
        raise UnknownSettingError(f"{checkpoint}: a {ck['kind']!r} model has no setting {', '.join(sorted(unknown))}")
    state = ck["state_dict"]
    meta = dict(ck.get("meta", {}))
    if average:
        names = [str(checkpoint)] + [str(p) for p in average]
        state = average_weights([ck] + [load(p) for p in average], names)
        meta["averaged"] = [Path(name).name for name in names]
    sd = {k: v.half() if (half and v.is_floating_point()) else v for k, v in state.items()}
    if settings:
        meta["settings"] = {**meta.get("settings", {}), **settings}
    save(out, {"kind": ck["kind"], "config": ck["config"], "state_dict": sd, "meta": meta})
    return Path(out)
