"""CTPN loss: softmax cross-entropy for text/non-text on the sampled anchors, smooth-L1 for the
vertical coordinates ``(v_c, v_h)`` of matched anchors and smooth-L1 for the side offsets of
anchors near a region end, weighted 1.0 and 2.0 as in the paper.

Each term is a mean over its own anchors; an empty set (no sampled anchor, no positive, no end
in view) contributes an exact 0 that still carries a gradient path, so the loss is never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossConfig:
    vertical_weight: float = 1.0
    side_weight: float = 2.0
    beta: float = 1 / 9  # smooth-L1 transition (sigma = 3 in the Faster R-CNN code CTPN builds on)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values[mask]``; 0 (connected to the graph) when the mask is empty."""
    return values[mask].sum() / mask.sum().clamp(min=1)


def ctpn_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
              cfg: LossConfig | None = None) -> dict[str, torch.Tensor]:
    """Loss terms for a batch.

    ``outputs`` as returned by :class:`~scenetext.detection.model.CTPN`; ``targets`` holds batched
    tensors of :class:`~scenetext.detection.targets.Targets`: ``labels`` ``(B, h, w, k)`` long
    (-1 unused), ``vertical`` ``(B, h, w, k, 2)``, ``vertical_mask``, ``side``, ``side_mask``.
    Returns ``{"loss", "cls", "vertical", "side"}``.
    """
    cfg = cfg or LossConfig()
    labels = targets["labels"]
    sampled = labels >= 0
    ce = F.cross_entropy(outputs["scores"].reshape(-1, 2), labels.reshape(-1).clamp(min=0), reduction="none")
    cls = _masked_mean(ce, sampled.reshape(-1))
    vertical = F.smooth_l1_loss(outputs["vertical"], targets["vertical"], reduction="none", beta=cfg.beta).sum(-1)
    vertical = _masked_mean(vertical, targets["vertical_mask"])
    side = F.smooth_l1_loss(outputs["side"], targets["side"], reduction="none", beta=cfg.beta)
    side = _masked_mean(side, targets["side_mask"])
    total = cls + cfg.vertical_weight * vertical + cfg.side_weight * side
    return {"loss": total, "cls": cls, "vertical": vertical, "side": side}
