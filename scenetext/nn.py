"""Building blocks shared by the detector and the recogniser."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

#: The attribute :func:`fold_batchnorm` leaves on a model: the digest of its weights before folding.
UNFOLDED_DIGEST = "unfolded_weights_digest"


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm + optional ReLU; :func:`fold_batchnorm` merges the BN.

    `padding` defaults to "same" for odd kernels (``dilation * (kernel // 2)``)."""

    def __init__(self, cin: int, cout: int, kernel=3, stride=1, padding=None, dilation: int = 1,
                 groups: int = 1, relu: bool = True):
        super().__init__()
        if padding is None:
            padding = dilation * (kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def weights_digest(model: nn.Module) -> str:
    """SHA-256 (16 hex digits) of a model's weights as trained: names, shapes and fp32 values of
    its parameters and buffers, or, for a model folded by :func:`fold_batchnorm`, of the weights
    it had before folding. (Folded values are computed, so they may differ in the last bit from
    one CPU to another; the weights a model file holds do not.)"""
    recorded = getattr(model, UNFOLDED_DIGEST, None)
    if recorded is not None:
        return recorded
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm of a :class:`ConvBN` into its conv, in place (same outputs,
    one pass less over memory). Use on inference models only: the model keeps the digest of its
    weights before folding (:func:`weights_digest`), so it must not be changed afterwards.

    The folded weights are computed in float64 and rounded once to float32."""
    digest = weights_digest(model)
    for module in model.modules():
        if isinstance(module, ConvBN) and isinstance(module.bn, nn.BatchNorm2d):
            conv, bn = module.conv, module.bn
            scale = bn.weight.double() / (bn.running_var.double() + bn.eps).sqrt()
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              conv.dilation, groups=conv.groups, bias=True)
            fused.weight.data = (conv.weight.data.double() * scale[:, None, None, None]).to(conv.weight.dtype)
            fused.bias.data = (bn.bias.data.double() - bn.running_mean.double() * scale).to(conv.weight.dtype)
            module.conv, module.bn = fused, nn.Identity()
    setattr(model, UNFOLDED_DIGEST, digest)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def reverse_within(seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence of a padded ``(T, B, C)`` batch reversed within its own length (padding stays
    at the end); applying it twice gives the input back."""
    T = seq.shape[0]
    t = torch.arange(T)[:, None]
    n = lengths.to(torch.long)[None, :]
    index = torch.where(t < n, n - 1 - t, t)
    return seq.gather(0, index[:, :, None].expand(-1, -1, seq.shape[2]))


def padded_bilstm(rnn: nn.LSTM, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A one-layer bidirectional LSTM over a right-padded batch, without packing: the forward
    direction runs over the padded batch as it is (a frame sees only earlier frames), the
    backward one over each sequence reversed within its length. Frames inside each length are
    exactly what the packed LSTM gives; frames past it are not meaningful. Packed sequences of
    unequal lengths cost ~2x more on a CPU (per-step batch changes); this path is for inference."""
    B, H = seq.shape[1], rnn.hidden_size
    zeros = (seq.new_zeros(1, B, H), seq.new_zeros(1, B, H))

    def run(x: torch.Tensor, suffix: str) -> torch.Tensor:
        weights = [getattr(rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        return torch.lstm(x, zeros, weights, True, 1, 0.0, False, False, False)[0]

    forward = run(seq, "")
    backward = reverse_within(run(reverse_within(seq, lengths), "_reverse"), lengths)
    return torch.cat([forward, backward], dim=2)
