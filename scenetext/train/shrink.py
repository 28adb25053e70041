"""Start a narrow CRNN from a trained wider one (``scenetext train rec --variant fast --init FILE``).

Training a small model from scratch on a CPU takes many hours; starting it from the channels
of a trained wider model that matter most, and then training it to match that model's outputs
(distillation, see :func:`distill_loss`), gets most of the way in a fraction of the steps.

Which channels are kept: for a conv block, the output channels with the largest BatchNorm scale
``|gamma|`` (after the ReLU, a channel with a small scale carries little); for an LSTM, the hidden
units (per direction) whose outputs the next layer weighs most; for the linear layer between the
LSTMs, the outputs the second LSTM weighs most. Every kept weight is copied as it is, so shrinking
a model into its own variant gives back the same model.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn import ConvBN
from ..recognition.model import CRNN


def _top(score: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest scores, in their original order."""
    if k > score.numel():
        raise ValueError(f"cannot keep {k} of {score.numel()} channels: the target is wider than the source")
    return score.topk(k).indices.sort().values


def _copy_convbn(dst: ConvBN, src: ConvBN, cin: torch.Tensor, cout: torch.Tensor) -> None:
    dst.conv.weight.data.copy_(src.conv.weight.data[cout][:, cin])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst.bn, name).data.copy_(getattr(src.bn, name).data[cout])


def _gate_rows(units: torch.Tensor, hidden: int) -> torch.Tensor:
    """Rows of an LSTM weight (gates i, f, g, o stacked) that belong to the kept hidden units."""
    return torch.cat([units + g * hidden for g in range(4)])


def _copy_lstm(dst: nn.LSTM, src: nn.LSTM, cin: torch.Tensor, units: list[torch.Tensor]) -> None:
    """Copy both directions of a one-layer LSTM, keeping inputs `cin` and hidden units `units[d]`."""
    for d, suffix in enumerate(("_l0", "_l0_reverse")):
        rows = _gate_rows(units[d], src.hidden_size)
        getattr(dst, "weight_ih" + suffix).data.copy_(getattr(src, "weight_ih" + suffix).data[rows][:, cin])
        getattr(dst, "weight_hh" + suffix).data.copy_(getattr(src, "weight_hh" + suffix).data[rows][:, units[d]])
        for name in ("bias_ih", "bias_hh"):
            getattr(dst, name + suffix).data.copy_(getattr(src, name + suffix).data[rows])


def _unit_scores(consumer_weight: torch.Tensor, hidden: int) -> list[torch.Tensor]:
    """Per direction, how strongly the next layer (weight columns = [forward, backward] units)
    reads each hidden unit."""
    norms = consumer_weight.abs().sum(0)
    return [norms[:hidden], norms[hidden:]]


def _concat_units(units: list[torch.Tensor], hidden: int) -> torch.Tensor:
    """Columns of the bidirectional output ([forward, backward]) that hold the kept units."""
    return torch.cat([units[0], units[1] + hidden])


@torch.no_grad()
def shrink_into(dst: CRNN, src: CRNN) -> CRNN:
    """Fill `dst` (a CRNN of a narrower or equal variant with the same layout) with the most
    important channels of `src`; returns `dst`."""
    if len(dst.blocks) != len(src.blocks) or dst.pools != src.pools:
        raise ValueError(f"variants {src.config.variant!r} and {dst.config.variant!r} differ in layout")
    if [b.conv.stride for b in dst.blocks] != [b.conv.stride for b in src.blocks]:
        raise ValueError(f"variants {src.config.variant!r} and {dst.config.variant!r} differ in strides")
    if dst.config.chars != src.config.chars or dst.config.in_channels != src.config.in_channels:
        raise ValueError("the two models must share the charset and input channels")
    cin = torch.arange(src.config.in_channels)
    for d, s in zip(list(dst.blocks) + [dst.last], list(src.blocks) + [src.last]):
        cout = _top(s.bn.weight.abs(), d.conv.out_channels)
        _copy_convbn(d, s, cin, cout)
        cin = cout
    h_src, h_dst = src.rnn1.hidden_size, dst.rnn1.hidden_size
    units1 = [_top(score, h_dst) for score in _unit_scores(src.proj1.weight, h_src)]
    _copy_lstm(dst.rnn1, src.rnn1, cin, units1)
    mid = _top(src.rnn2.weight_ih_l0.abs().sum(0), dst.proj1.out_features)
    dst.proj1.weight.data.copy_(src.proj1.weight.data[mid][:, _concat_units(units1, h_src)])
    dst.proj1.bias.data.copy_(src.proj1.bias.data[mid])
    units2 = [_top(score, dst.rnn2.hidden_size) for score in _unit_scores(src.fc.weight, src.rnn2.hidden_size)]
    _copy_lstm(dst.rnn2, src.rnn2, mid, units2)
    dst.fc.weight.data.copy_(src.fc.weight.data[:, _concat_units(units2, src.rnn2.hidden_size)])
    dst.fc.bias.data.copy_(src.fc.bias.data)
    return dst


def distill_loss(student_log_probs: torch.Tensor, teacher_log_probs: torch.Tensor,
                 frames: torch.Tensor) -> torch.Tensor:
    """Mean over valid frames of KL(teacher || student) between per-frame class distributions.

    Both are (T, B, classes) log-probabilities; frames (B,) are the valid frame counts."""
    kl = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(-1)  # (T, B)
    valid = (torch.arange(kl.shape[0])[:, None] < frames[None, :]).to(kl.dtype)
    return (kl * valid).sum() / valid.sum().clamp(min=1)
