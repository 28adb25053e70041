"""CTPN loss: softmax cross-entropy for text/non-text on the sampled anchors, smooth-L1 for the
vertical coordinates ``(v_c, v_h)`` of matched anchors and smooth-L1 for the side offsets of
anchors near a region end, weighted 1.0 and 2.0 as in the paper.

Optional online hard-negative mining (``hard_negatives`` > 0): the randomly sampled negatives are
mostly easy (sky, road), so the detector learned little about the textures that fool it (foliage,
railings, brick). Each image then also contributes its ``hard_negatives`` background anchors with
the highest cross-entropy, among all its background anchors, as a separate term ``hard``.

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
    hard_negatives: int = 0  # per image; 0 turns mining off
    hard_weight: float = 1.0


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values[mask]``; 0 (connected to the graph) when the mask is empty."""
    return values[mask].sum() / mask.sum().clamp(min=1)


def ctpn_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
              cfg: LossConfig | None = None) -> dict[str, torch.Tensor]:
    """Loss terms for a batch.

    ``outputs`` as returned by :class:`~scenetext.detection.model.CTPN`; ``targets`` holds batched
    tensors of :class:`~scenetext.train.det_targets.Targets`: ``labels`` ``(B, h, w, k)`` long
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
    terms = {"loss": total, "cls": cls, "vertical": vertical, "side": side}
    if cfg.hard_negatives > 0 and "negatives" in targets:
        terms["hard"] = hard_negative_loss(ce.reshape(labels.shape[0], -1),
                                           targets["negatives"].reshape(labels.shape[0], -1), cfg.hard_negatives)
        terms["loss"] = total + cfg.hard_weight * terms["hard"]
    return terms


def hard_negative_loss(ce: torch.Tensor, negatives: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of each image's ``k`` largest cross-entropies among its background anchors.

    ``ce`` and ``negatives`` are ``(B, N)``; where an image has fewer than ``k`` background
    anchors, all of them count. Exact 0 (with a gradient path) when there are none.
    """
    masked = ce.masked_fill(~negatives, float("-inf"))
    top, _ = masked.topk(min(k, ce.shape[1]), dim=1)
    chosen = torch.isfinite(top)
    return _masked_mean(top, chosen)


def distill_loss(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor],
                 beta: float = 1 / 9) -> torch.Tensor:
    """How far a student's outputs are from a teacher's on the same images (both as
    :class:`~scenetext.detection.model.CTPN` returns them): the KL divergence of the teacher's
    text/non-text distribution from the student's, averaged over every anchor, plus smooth-L1
    between their vertical coordinates and side offsets, each anchor weighted by the teacher's
    text probability (where the teacher sees no text, its coordinates mean nothing)."""
    t_logp = F.log_softmax(teacher["scores"].float(), dim=-1)
    s_logp = F.log_softmax(student["scores"], dim=-1)
    kl = (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean()
    weight = t_logp[..., 1].exp()
    norm = weight.sum().clamp(min=1.0)
    vertical = F.smooth_l1_loss(student["vertical"], teacher["vertical"], reduction="none", beta=beta).sum(-1)
    side = F.smooth_l1_loss(student["side"], teacher["side"], reduction="none", beta=beta)
    return kl + ((vertical + side) * weight).sum() / norm


def hint_loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """How far a student's feature maps are from a teacher's of the same shapes
    (:meth:`~scenetext.detection.model.CTPN.forward_with_hints`): each map's mean squared
    difference relative to the teacher map's mean square, summed over the maps."""
    return sum(((s - t) ** 2).mean() / (t ** 2).mean().clamp(min=1e-12) for s, t in zip(student, teacher))
