"""CRNN: convolutional features -> two BiLSTM layers -> per-frame class scores, trained with CTC.

The conv stack takes a crop of height 32 and any width W (a multiple of ``FRAME_STRIDE`` = 4,
:mod:`.preprocess`) to W / FRAME_STRIDE frames.
Batches are right-padded; the true widths are passed in, every conv block's output is masked
beyond the valid width and the LSTMs run on packed sequences, so a crop gives the same result
alone or in a padded batch.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn import ConvBN, padded_bilstm
from .config import CRNNConfig  # noqa: F401 (also this module's name)
from .preprocess import FRAME_STRIDE

# Conv stack per variant: (out_channels, pool) per block; pool is None, (2, 2) or (2, 1).
# The "small" variant's first conv has stride 2 instead of a pool after it: on a CPU the
# full-resolution layers cost the most for the least work.
VARIANTS = {
    "small": dict(stem_stride=2, blocks=[(32, None), (64, (2, 2)), (128, None), (128, (2, 1)), (192, None),
                                         (192, (2, 1))], last=256, hidden=128),
    # Half the small variant's widths (LSTMs 96 wide): ~2.4x the speed (`make bench`), for laptops; it is trained by
    # shrinking a trained small model into it and distilling (shrink.py).
    "fast": dict(stem_stride=2, blocks=[(16, None), (32, (2, 2)), (64, None), (64, (2, 1)), (96, None),
                                        (96, (2, 1))], last=128, hidden=96),
    # Three quarters of the small variant's conv widths, its LSTMs kept (128): ~1.4-1.9x its speed. Trained
    # like "fast", by shrinking a trained small model into it and distilling.
    "medium": dict(stem_stride=2, blocks=[(24, None), (48, (2, 2)), (96, None), (96, (2, 1)), (144, None),
                                          (144, (2, 1))], last=192, hidden=128),
    # The paper's channel widths (64-128-256-256-512-512-512, 256 hidden): for GPUs.
    "large": dict(stem_stride=1, blocks=[(64, (2, 2)), (128, (2, 2)), (256, None), (256, (2, 1)), (512, None),
                                         (512, (2, 1))], last=512, hidden=256),
}


class CRNN(nn.Module):
    def __init__(self, config: CRNNConfig | None = None):
        super().__init__()
        self.config = config = config or CRNNConfig()
        if config.height != 32:
            raise ValueError("CRNN expects crops of height 32")
        spec = VARIANTS[config.variant]
        blocks, pools = [], []
        cin = config.in_channels
        for i, (cout, pool) in enumerate(spec["blocks"]):
            blocks.append(ConvBN(cin, cout, stride=spec["stem_stride"] if i == 0 else 1))
            pools.append(pool)
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.pools = pools
        # Height 2 -> 1 with a (2, 1) valid conv; width is unchanged.
        self.last = ConvBN(cin, spec["last"], kernel=(2, 1), padding=0)
        hidden = spec["hidden"]
        self.rnn1 = nn.LSTM(spec["last"], hidden, bidirectional=True)
        self.proj1 = nn.Linear(2 * hidden, hidden)
        self.rnn2 = nn.LSTM(hidden, hidden, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, config.num_outputs)

    @classmethod
    def load(cls, path, kind: str = "crnn") -> "CRNN":
        """A model file or training checkpoint as a CRNN (fp32, BatchNorms as trained); ``kind``
        is the file's model kind (``"wordsplit"`` for the detector's word splitter)."""
        from .. import checkpoint

        return cls.from_checkpoint(checkpoint.load(path, kind=kind))

    @classmethod
    def from_checkpoint(cls, ck: dict) -> "CRNN":
        """The CRNN of a loaded model file (:func:`scenetext.checkpoint.load`)."""
        model = cls(CRNNConfig.from_dict(ck["config"]))
        model.load_state_dict(ck["state_dict"])
        return model

    @staticmethod
    def _mask(x: torch.Tensor, widths: torch.Tensor | None) -> torch.Tensor:
        # A batch with no padded column (crops of one width, or a crop read alone) needs no mask:
        # skipping it saves ~12 % of the small model's time on such a batch.
        if widths is None or bool((widths >= x.shape[-1]).all()):
            return x
        cols = torch.arange(x.shape[-1], device=x.device)
        mask = (cols[None, :] < widths[:, None]).to(x.dtype)[:, None, None, :]
        # Without autograd (inference) in place: no second feature map the size of the first.
        return x * mask if torch.is_grad_enabled() and x.requires_grad else x.mul_(mask)

    def frames(self, widths: torch.Tensor) -> torch.Tensor:
        """Number of output frames for input widths (pixels)."""
        return torch.div(widths, FRAME_STRIDE, rounding_mode="floor").clamp(min=1)

    def forward(self, x: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, 32, W) in [-1, 1]; widths: (B,) valid widths. Returns log-probs (T, B, classes)."""
        w = widths
        for block, pool in zip(self.blocks, self.pools):
            x = block(x)
            if w is not None and block.conv.stride[1] == 2:
                w = torch.div(w, 2, rounding_mode="floor")
            x = self._mask(x, w)
            if pool is not None:
                x = nn.functional.max_pool2d(x, pool, pool)
                if w is not None and pool[1] == 2:
                    w = torch.div(w, 2, rounding_mode="floor")
        x = self._mask(self.last(x), w)  # (B, C, 1, T)
        seq = x.squeeze(2).permute(2, 0, 1)  # (T, B, C)
        T, B = seq.shape[:2]
        lengths = w if w is not None else torch.full((B,), T, dtype=torch.long)
        lengths = lengths.clamp(1, T).cpu()
        seq = self._rnn(self.rnn1, seq, lengths)
        seq = self.proj1(seq)
        seq = self._rnn(self.rnn2, seq, lengths)
        return self.fc(seq).log_softmax(-1)

    @staticmethod
    def _rnn(rnn: nn.LSTM, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if bool((lengths == seq.shape[0]).all()):
            return rnn(seq)[0]
        if not torch.is_grad_enabled():
            return padded_bilstm(rnn, seq, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(seq, lengths, enforce_sorted=False)
        out, _ = rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, total_length=seq.shape[0])[0]

