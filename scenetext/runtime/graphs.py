"""The inference paths of the detector and the recogniser written for ONNX export.

They compute what the predictors get from the torch models (same weights, shared with the model
passed in), with the data-dependent shortcuts taken out so that one traced graph serves every
input size:

- :class:`CTPNGraph` is :meth:`CTPN.forward <scenetext.detection.model.CTPN.forward>` on an input
  whose height and width are multiples of 16 (what ``normalize(pad_to=16)`` gives; the model's own
  padding branch is not traced).
- :class:`CRNNGraph` is :meth:`CRNN.forward <scenetext.recognition.model.CRNN.forward>` on a
  padded batch: the width mask is always applied (a mask of ones where nothing is padded, the
  same values) and each BiLSTM is the exact padded one of :func:`~scenetext.nn.padded_bilstm`:
  the forward direction over the padded batch, the backward one over each sequence reversed
  within its own length, so a crop's frames do not depend on what it was batched with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..detection.model import CTPN
from ..recognition.model import CRNN


class CTPNGraph(nn.Module):
    """``x`` ``(B, 3, H, W)`` normalised, ``H`` and ``W`` multiples of 16 -> ``scores``,
    ``vertical``, ``side`` as :meth:`CTPN.forward` returns them."""

    def __init__(self, model: CTPN):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.model
        feat = m.window(m.backbone(x))
        b, c, h, w = feat.shape
        rows = m.rnn(feat.permute(0, 2, 3, 1).reshape(b * h, w, c))[0]
        out = m._outputs(rows.reshape(b, h, w, -1).permute(0, 3, 1, 2))
        return out["scores"], out["vertical"], out["side"]


def _direction(rnn: nn.LSTM, suffix: str) -> nn.LSTM:
    """One direction of a one-layer bidirectional LSTM as a unidirectional LSTM (weights shared)."""
    one = nn.LSTM(rnn.input_size, rnn.hidden_size)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        setattr(one, f"{name}_l0", getattr(rnn, f"{name}_l0{suffix}"))
    return one


def reverse_within(seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """:func:`scenetext.nn.reverse_within` with the time axis taken from the tensor (traceable)."""
    t = torch.arange(seq.shape[0], device=seq.device)[:, None]
    n = lengths[None, :]
    index = torch.where(t < n, n - 1 - t, t)
    return seq.gather(0, index[:, :, None].expand(-1, -1, seq.shape[2]))


class PaddedBiLSTM(nn.Module):
    """:func:`scenetext.nn.padded_bilstm` as a module: ``(T, B, C)`` and lengths ``(B,)``."""

    def __init__(self, rnn: nn.LSTM):
        super().__init__()
        if rnn.num_layers != 1 or not rnn.bidirectional or rnn.batch_first:
            raise ValueError("expects a one-layer, bidirectional, time-first LSTM")
        self.forward_rnn = _direction(rnn, "")
        self.backward_rnn = _direction(rnn, "_reverse")

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        fwd = self.forward_rnn(seq)[0]
        bwd = reverse_within(self.backward_rnn(reverse_within(seq, lengths))[0], lengths)
        return torch.cat([fwd, bwd], dim=2)


def _mask(x: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    cols = torch.arange(x.shape[-1], device=x.device)
    return x * (cols[None, :] < widths[:, None]).to(x.dtype)[:, None, None, :]


class CRNNGraph(nn.Module):
    """``x`` ``(B, C, 32, W)`` right-padded, ``widths`` ``(B,)`` int64 valid widths -> log-probs
    ``(W // 4, B, classes)``, as :meth:`CRNN.forward` gives them (frames past a crop's
    ``widths // 4`` are not meaningful)."""

    def __init__(self, model: CRNN):
        super().__init__()
        self.model = model
        self.rnn1 = PaddedBiLSTM(model.rnn1)
        self.rnn2 = PaddedBiLSTM(model.rnn2)

    def forward(self, x: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        m, w = self.model, widths
        for block, pool in zip(m.blocks, m.pools):
            x = block(x)
            if block.conv.stride[1] == 2:
                w = torch.div(w, 2, rounding_mode="floor")
            x = _mask(x, w)
            if pool is not None:
                x = F.max_pool2d(x, pool, pool)
                if pool[1] == 2:
                    w = torch.div(w, 2, rounding_mode="floor")
        x = _mask(m.last(x), w)
        seq = x.squeeze(2).permute(2, 0, 1)  # (T, B, C)
        lengths = w.clamp(min=1)
        seq = m.proj1(self.rnn1(seq, lengths))
        return m.fc(self.rnn2(seq, lengths)).log_softmax(-1)
