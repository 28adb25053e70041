"""What the detector network is given, without torch: its config (:class:`CTPNConfig`) and its
normalised input (:func:`normalized`), shared by the torch model (:mod:`.model`) and the
onnxruntime one (:mod:`scenetext.runtime.onnxrt`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from .anchors import ANCHOR_HEIGHTS

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass
class CTPNConfig:
    variant: str = "small"
    anchor_heights: list[float] = field(default_factory=lambda: list(ANCHOR_HEIGHTS))

    @property
    def num_anchors(self) -> int:
        return len(self.anchor_heights)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CTPNConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def normalized(rgb: np.ndarray, pad_to: int = 1) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` or ``(B, H, W, 3)`` normalised (``(rgb / 255 - MEAN) / STD``, the
    ImageNet statistics) into a float32 ``(B, H', W', 3)`` array, the bottom and right zero-padded
    to multiples of ``pad_to`` as the network itself would pad (zero is the mean colour).

    Each pixel is looked up in a 256-entry table per channel (OpenCV's ``LUT``) and written
    straight into the one float buffer the network reads, stored as the pixels are: no
    intermediate float copy, and a few times faster than arithmetic on planes. Its
    ``transpose(0, 3, 1, 2)`` is the network's ``(B, 3, H', W')`` input in the channels-last layout.
    """
    x = np.ascontiguousarray(rgb, dtype=np.uint8)
    x = x.reshape(-1, *x.shape[-3:])
    h, w = x.shape[1:3]
    return normalized_into(x, -(-h // pad_to) * pad_to, -(-w // pad_to) * pad_to)


def normalized_into(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """uint8 ``(B, h, w, 3)`` normalised into a zero-padded float32 ``(B, rows, cols, 3)``
    (``rows >= h``, ``cols >= w``)."""
    b, h, w, c = x.shape
    out = np.zeros((b, rows, cols, c), np.float32)
    for i in range(b):
        if h and w:
            view = out[i, :h, :w]
            written = cv2.LUT(x[i], _NORMALIZE_LUT, dst=view)
            if not np.may_share_memory(written, view):  # OpenCV wrote elsewhere rather than into the view
                view[...] = written
    return out


def normalized_planes(rgb: np.ndarray, pad_to: int = 1) -> np.ndarray:
    """:func:`normalized` of one uint8 RGB image ``(H, W, 3)`` in planes, ``(1, 3, H', W')``: the
    image is split into its three byte planes and each is looked up straight into its float
    plane, so no interleaved float copy is made and transposed (at 1600x900 that copy took ~11 ms
    of the ~14 a transposed :func:`normalized` did; this takes ~3)."""
    x = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = x.shape[:2]
    out = np.zeros((1, 3, -(-h // pad_to) * pad_to, -(-w // pad_to) * pad_to), np.float32)
    if h and w:
        for c, plane in enumerate(cv2.split(x)):
            view = out[0, c, :h, :w]
            written = cv2.LUT(plane, _PLANE_LUTS[c], dst=view)
            if not np.may_share_memory(written, view):
                view[...] = written
    return out


#: ``(rgb / 255 - MEAN) / STD`` for every byte value, per channel, as OpenCV's LUT wants it.
_NORMALIZE_LUT = ((np.arange(256.0)[:, None] / 255 - np.array(MEAN)) / np.array(STD)).astype(np.float32).reshape(256, 1, 3)
#: The same, one table per channel.
_PLANE_LUTS = [np.ascontiguousarray(_NORMALIZE_LUT[:, :, c]) for c in range(3)]
