"""CTPN: a stride-16 conv backbone, a 3x3 "window" conv, a BiLSTM along each feature row, a 1x1
"FC" conv, and per position and anchor: text/non-text scores, vertical coordinates and a side
offset.

Input: ``(B, 3, H, W)`` RGB, normalised by :func:`normalize` (``(rgb / 255 - MEAN) / STD``, the
ImageNet statistics), any ``H`` and ``W``: the model pads the bottom and right to a multiple of 16
with zeros (the mean colour), so the feature map is ``ceil(H / 16) x ceil(W / 16)``.

Variants: ``"small"`` is designed for a CPU and trained from scratch: strided plain 3x3 convs
while the channel count is small (16-32-64 channels down to stride 8), then depthwise-separable
blocks (64, then 128 channels at stride 16) whose dilations (2, 4) widen the receptive field to
about 310 px, enough for the tallest anchor (283 px), at little cost. Measured on a CPU, the
depthwise blocks beat plain convs of the same widths (about 35 % less backbone time). 0.48 M
parameters. ``"lite"`` is ``"small"`` with depthwise-separable blocks for its second to fourth
layers and its window conv, the rest the same: ~40 % less network time (1600x912, onnxruntime,
2 threads: 28 against 48 ms), 0.33 M parameters; a ``"small"`` model's weights start the layers
the two share and can teach it (``scenetext train det --variant lite --init ctpn.pt --teacher
ctpn.pt --hint 1``). ``"vgg16"`` is the paper's VGG16 conv1..conv5_3 (no pool5) with its
512-wide head (128 hidden per LSTM direction): a GPU model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..nn import ConvBN, padded_bilstm
from .anchors import STRIDE
from .inputs import MEAN, STD, CTPNConfig, normalized, normalized_into  # noqa: F401 (also this module's names)

#: :meth:`CTPN.forward_rgb` runs the backbone's first layers, down to this stride, in strips of
#: about STRIP_ROWS image rows.
STEM_STRIDE = 8
STRIP_ROWS = 256
#: :meth:`CTPN.forward_with_hints` also returns the backbone's feature map after this many layers
#: (the small and lite variants' first four: stride 8, where their layers start to be the same).
HINT_LAYERS = 4

# Backbone layers per variant: (kind, out_channels, stride, dilation); kind "conv" is a 3x3
# conv + BN + ReLU, "dw" a depthwise 3x3 + BN + ReLU then a pointwise 1x1 + BN + ReLU, "pool" a
# 2x2 max pool. The strides multiply to 16.
VARIANTS = {
    "small": dict(
        layers=[("conv", 16, 2, 1), ("conv", 32, 2, 1), ("conv", 32, 1, 1), ("conv", 64, 2, 1),
                ("dw", 64, 1, 1), ("dw", 128, 2, 1), ("dw", 128, 1, 1), ("dw", 128, 1, 2), ("dw", 128, 1, 4)],
        window=128, hidden=96, fc=256,
    ),
    "lite": dict(
        layers=[("conv", 16, 2, 1), ("dw", 32, 2, 1), ("dw", 32, 1, 1), ("dw", 64, 2, 1),
                ("dw", 64, 1, 1), ("dw", 128, 2, 1), ("dw", 128, 1, 1), ("dw", 128, 1, 2), ("dw", 128, 1, 4)],
        window=128, window_kind="dw", hidden=96, fc=256,
    ),
    "vgg16": dict(
        layers=[("conv", 64, 1, 1), ("conv", 64, 1, 1), ("pool", 64, 2, 1),
                ("conv", 128, 1, 1), ("conv", 128, 1, 1), ("pool", 128, 2, 1),
                ("conv", 256, 1, 1), ("conv", 256, 1, 1), ("conv", 256, 1, 1), ("pool", 256, 2, 1),
                ("conv", 512, 1, 1), ("conv", 512, 1, 1), ("conv", 512, 1, 1), ("pool", 512, 2, 1),
                ("conv", 512, 1, 1), ("conv", 512, 1, 1), ("conv", 512, 1, 1)],
        window=512, hidden=128, fc=512,
    ),
}


def normalize(rgb: np.ndarray | torch.Tensor, pad_to: int = 1, channels_last: bool = False) -> torch.Tensor:
    """:func:`~.inputs.normalized` as the torch model's ``(B, 3, H, W)`` float input (a view of
    the channels-last array; ``channels_last=False`` copies it to planes)."""
    x = rgb.numpy() if isinstance(rgb, torch.Tensor) else rgb
    t = torch.from_numpy(normalized(x, pad_to)).permute(0, 3, 1, 2)
    return t if channels_last else t.contiguous()


def _padded(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` zero-padded at the bottom and right to multiples of the stride."""
    pad_h, pad_w = -x.shape[2] % STRIDE, -x.shape[3] % STRIDE
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


def _normalized(x: np.ndarray, rows: int, cols: int) -> torch.Tensor:
    """:func:`~.inputs.normalized_into` as a ``(B, 3, rows, cols)`` channels-last tensor."""
    return torch.from_numpy(normalized_into(x, rows, cols)).permute(0, 3, 1, 2)


def _layer(kind: str, cin: int, cout: int, stride: int, dilation: int) -> nn.Module:
    if kind == "conv":
        return ConvBN(cin, cout, 3, stride=stride, dilation=dilation)
    if kind == "dw":
        return nn.Sequential(ConvBN(cin, cin, 3, stride=stride, dilation=dilation, groups=cin), ConvBN(cin, cout, 1))
    if kind == "pool":
        return nn.MaxPool2d(stride, stride)
    raise ValueError(f"unknown backbone layer kind {kind!r}")


def make_backbone(layers) -> tuple[nn.Sequential, int]:
    """The backbone of a variant and its output channel count."""
    modules, cin, total_stride = [], 3, 1
    for kind, cout, stride, dilation in layers:
        modules.append(_layer(kind, cin, cout, stride, dilation))
        cin, total_stride = cout, total_stride * stride
    if total_stride != STRIDE:
        raise ValueError(f"backbone stride is {total_stride}, expected {STRIDE}")
    return nn.Sequential(*modules), cin


class CTPN(nn.Module):
    def __init__(self, config: CTPNConfig | None = None):
        super().__init__()
        self.config = config = config or CTPNConfig()
        spec = VARIANTS[config.variant]
        self.backbone, channels = make_backbone(spec["layers"])
        self.window = _layer(spec.get("window_kind", "conv"), channels, spec["window"], 1, 1)
        self.rnn = nn.LSTM(spec["window"], spec["hidden"], batch_first=True, bidirectional=True)
        self.fc = nn.Conv2d(2 * spec["hidden"], spec["fc"], 1)
        # Per anchor: 2 scores, 2 vertical coordinates, 1 side offset.
        self.head = nn.Conv2d(spec["fc"], 5 * config.num_anchors, 1)

    @classmethod
    def from_checkpoint(cls, ck: dict) -> "CTPN":
        """The CTPN of a loaded model file or checkpoint (:func:`scenetext.checkpoint.load`)."""
        model = cls(CTPNConfig.from_dict(ck["config"]))
        model.load_state_dict(ck["state_dict"])
        return model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: ``(B, 3, H, W)`` normalised RGB. Returns, with ``h, w = ceil(H/16), ceil(W/16)``
        and ``k`` anchors: ``scores`` ``(B, h, w, k, 2)`` logits (index 1 = text), ``vertical``
        ``(B, h, w, k, 2)`` ``(v_c, v_h)`` and ``side`` ``(B, h, w, k)`` offsets."""
        return self._from_features(self._features(x))

    def forward_rgb(self, rgb: np.ndarray, strip_rows: int | None = STRIP_ROWS) -> dict[str, torch.Tensor]:
        """:meth:`forward` of ``normalize(rgb, pad_to=16)`` for one uint8 RGB image ``(H, W, 3)``,
        with the first layers (down to stride :data:`STEM_STRIDE`) run strip by strip.

        Each strip is ``strip_rows`` rows of the image (padded to a multiple of 16 as
        :meth:`forward` pads it) plus, above and below, enough neighbouring rows for every
        output row it keeps to see what it sees in one pass; the strips' outputs are stitched
        into the stride-8 feature map. So neither the whole image in floats nor the
        full-resolution feature maps, the biggest buffers of a pass, exist at once: at 1600x900
        the pass peaks ~30 MB lower than in one pass, and runs no slower. The outputs are the
        one-pass outputs (to float rounding). ``strip_rows=None``, or an image within one strip, runs in one pass. For
        inference: a model in training mode would see different BatchNorm statistics per strip.
        """
        return self._from_features(self._features_rgb(rgb, strip_rows))

    def _features_rgb(self, rgb: np.ndarray, strip_rows: int | None) -> torch.Tensor:
        """:meth:`_features` of a uint8 RGB image, the stem in strips (see :meth:`forward_rgb`)."""
        h, w = rgb.shape[:2]
        ph, pw = -(-h // STRIDE) * STRIDE, -(-w // STRIDE) * STRIDE
        layers, stem_stride, halo = self.stem()
        x = np.ascontiguousarray(rgb, dtype=np.uint8)[None]
        if strip_rows is None or ph <= strip_rows + 2 * halo:
            return self._features(_normalized(x, ph, pw))
        strip = -(-strip_rows // stem_stride) * stem_stride
        stem = self.backbone[:layers]
        feat = None
        for top in range(0, ph, strip):
            bottom = min(top + strip, ph)
            lo, hi = max(0, top - halo), min(ph, bottom + halo)
            part = stem(_normalized(x[:, lo:min(hi, h)], hi - lo, pw))
            if feat is None:
                feat = part.new_empty(1, part.shape[1], ph // stem_stride, pw // stem_stride).contiguous(
                    memory_format=torch.channels_last)
            skip = (top - lo) // stem_stride
            feat[:, :, top // stem_stride: bottom // stem_stride] = part[:, :, skip: skip + (bottom - top) // stem_stride]
        return self.window(self.backbone[layers:](feat))

    def stem(self) -> tuple[int, int, int]:
        """The backbone's first layers run in strips by :meth:`forward_rgb`: ``(layers, stride,
        halo)``, the number of layers (those down to :data:`STEM_STRIDE`), their total stride and
        the rows of context a strip needs on each side (a multiple of the stride, covering the
        layers' receptive field)."""
        spec = VARIANTS[self.config.variant]["layers"]
        layers, stride, field = 0, 1, 1
        for kind, _, s, dilation in spec:
            if stride * s > STEM_STRIDE:
                break
            field += (2 * s if kind == "pool" else 2 * dilation) * stride  # 3x3 convs; pools (size s, off-centre) generously
            stride *= s
            layers += 1
        reach = (field - 1) // 2 + 1
        return layers, stride, -(-reach // stride) * stride

    def _from_features(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        b, c, h, w = feat.shape
        rows = self.rnn(feat.permute(0, 2, 3, 1).reshape(b * h, w, c))[0]
        return self._outputs(rows.reshape(b, h, w, -1).permute(0, 3, 1, 2))

    @staticmethod
    def normalize(rgb: np.ndarray, pad_to: int = 1) -> torch.Tensor:
        """This model's input for one uint8 RGB image: :func:`normalize`, channels-last."""
        return normalize(rgb, pad_to=pad_to, channels_last=True)

    def forward_many(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Inference on images of different sizes (each ``(1, 3, H, W)``): what :meth:`forward`
        gives each, with one BiLSTM call over the feature rows of them all (padded to the widest;
        exact, see :func:`~scenetext.nn.padded_bilstm`) instead of one per image, whose steps
        run one after another."""
        feats = [self._features(x) for x in images]
        widths = [f.shape[3] for f in feats]
        counts = [f.shape[0] * f.shape[2] for f in feats]
        seq = feats[0].new_zeros(max(widths), sum(counts), feats[0].shape[1])  # (T, rows, C)
        offset = 0
        for f, n, w in zip(feats, counts, widths):
            seq[:w, offset : offset + n] = f.permute(3, 0, 2, 1).reshape(w, n, -1)
            offset += n
        lengths = torch.tensor(widths).repeat_interleave(torch.tensor(counts))
        rows = padded_bilstm(self.rnn, seq, lengths)
        out, offset = [], 0
        for f, n, w in zip(feats, counts, widths):
            b, _, h, _ = f.shape
            part = rows[:w, offset : offset + n].permute(1, 0, 2).reshape(b, h, w, -1)
            out.append(self._outputs(part.permute(0, 3, 1, 2)))
            offset += n
        return out

    def forward_with_hints(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """:meth:`forward`'s outputs and two of the feature maps they come from (the backbone's
        after its first :data:`HINT_LAYERS` layers, at stride 8, and the window conv's), which a
        student of another variant can learn to match a teacher's (distillation)."""
        mid = self.backbone[:HINT_LAYERS](_padded(x))
        feat = self.window(self.backbone[HINT_LAYERS:](mid))
        return self._from_features(feat), [mid, feat]

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.window(self.backbone(_padded(x)))

    def _outputs(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, h, w = feat.shape
        out = self.head(F.relu(self.fc(feat), inplace=True))
        k = self.config.num_anchors
        out = out.permute(0, 2, 3, 1)  # (B, h, w, 5k)
        return {
            "scores": out[..., : 2 * k].reshape(b, h, w, k, 2),
            "vertical": out[..., 2 * k : 4 * k].reshape(b, h, w, k, 2),
            "side": out[..., 4 * k :],
        }
