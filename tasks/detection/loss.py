"""SSD loss: smooth-L1 on matched anchors + classification with 3:1 hard-negative mining (Liu et al. 2016),
or sigmoid focal loss over all anchors (Lin et al. 2017) as an option."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from .box_coder import BoxCoder
from .matcher import assign


@dataclass(frozen=True)
class LossConfig:
    #: "softmax" (SSD paper), "sigmoid" (ssd_mobilenet_v1_coco.config) or "focal"
    classification: str = "softmax"
    neg_pos_ratio: float = 3.0
    min_negatives: int = 3  # TF's hard_example_miner min_negatives_per_image
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    box_weight: float = 1.0
    cls_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.classification not in CLASSIFICATION_LOSSES:
            raise ValueError(
                f"classification loss must be one of {sorted(CLASSIFICATION_LOSSES)}, got {self.classification!r}"
            )
        if self.neg_pos_ratio <= 0:
            raise ValueError(f"neg_pos_ratio must be > 0, got {self.neg_pos_ratio}")


def _softmax_ce(logits: torch.Tensor, labels: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), labels.clamp(min=0).flatten(), reduction="none").view(labels.shape)


def _one_hot(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.one_hot(labels.clamp(min=0), logits.shape[-1]).to(logits.dtype)


def _sigmoid_ce(logits: torch.Tensor, labels: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    # independent per-class sigmoids: background is "no class on", the background column is unused
    # (the official sigmoid-trained SSD's column 0 is ~0 on every anchor, as this loss leaves it)
    target = _one_hot(logits, labels)[..., 1:]
    return F.binary_cross_entropy_with_logits(logits[..., 1:], target, reduction="none").sum(-1)


def _focal(logits: torch.Tensor, labels: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    # as for sigmoid CE, the background column is not a class: all-zero targets mean background
    target = _one_hot(logits, labels)[..., 1:]
    return sigmoid_focal_loss(logits[..., 1:], target, cfg.focal_alpha, cfg.focal_gamma, reduction="none").sum(-1)


#: per-anchor classification losses, (N, A, C+1) logits and (N, A) labels → (N, A)
CLASSIFICATION_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, LossConfig], torch.Tensor]] = {
    "softmax": _softmax_ce,
    "sigmoid": _sigmoid_ce,
    "focal": _focal,
}


def hard_negative_mask(cls_loss: torch.Tensor, labels: torch.Tensor, ratio: float, min_negatives: int) -> torch.Tensor:
    """Positives plus, per image, the ``ratio × positives`` (at least ``min_negatives``) negatives with the
    highest loss. ``labels``: (N, A), 0 = background, -1 = ignored."""
    pos = labels > 0
    neg_loss = cls_loss.detach().masked_fill(labels != 0, float("-inf"))
    num_neg = (pos.sum(1, keepdim=True) * ratio).long().clamp(min=min_negatives)
    num_neg = torch.minimum(num_neg, (labels == 0).sum(1, keepdim=True))
    rank = neg_loss.argsort(dim=1, descending=True).argsort(dim=1)
    return pos | (rank < num_neg)


def ssd_loss(
    box_codes: torch.Tensor,
    logits: torch.Tensor,
    target_codes: torch.Tensor,
    labels: torch.Tensor,
    cfg: LossConfig,
) -> dict[str, torch.Tensor]:
    """Box codes (N, A, 4), logits (N, A, C+1), encoded targets (N, A, 4), labels (N, A) → losses
    normalised by the number of positive anchors (at least 1)."""
    pos = labels > 0
    num_pos = pos.sum().clamp(min=1).to(box_codes.dtype)
    box_loss = F.smooth_l1_loss(box_codes[pos], target_codes[pos], beta=1.0, reduction="sum") / num_pos
    cls_loss = CLASSIFICATION_LOSSES[cfg.classification](logits.float(), labels, cfg)
    if cfg.classification == "focal":
        keep = labels >= 0
    else:
        keep = hard_negative_mask(cls_loss, labels, cfg.neg_pos_ratio, cfg.min_negatives)
    cls_loss = cls_loss[keep].sum() / num_pos
    total = cfg.box_weight * box_loss + cfg.cls_weight * cls_loss
    return {"loss": total, "loss_box": box_loss.detach(), "loss_cls": cls_loss.detach()}


class SSDCriterion:
    """Match targets to anchors, encode them and compute :func:`ssd_loss`.

    ``criterion(outputs, targets)`` → the total loss (the engine's ``loss_fn``); ``losses`` → all terms.
    ``targets``: per image ``boxes`` (G, 4) xyxy in pixels of the input tensor, ``labels`` (G,) ≥ 1.
    """

    def __init__(self, coder: BoxCoder, cfg: LossConfig, match_threshold: float = 0.5) -> None:
        self.coder, self.cfg, self.match_threshold = coder, cfg, match_threshold

    def losses(self, outputs, targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        codes, logits, anchors, (h, w) = outputs
        if len(targets) != len(codes):
            raise ValueError(f"{len(targets)} targets for a batch of {len(codes)} images")
        scale = anchors.new_tensor([w, h, w, h])
        labels, target_codes = [], []
        for t in targets:
            boxes = t["boxes"].to(anchors).reshape(-1, 4) / scale
            lab, matched, _ = assign(boxes, t["labels"].to(anchors.device), anchors, self.match_threshold)
            labels.append(lab)
            target_codes.append(self.coder.encode(matched, anchors))
        return ssd_loss(codes.float(), logits, torch.stack(target_codes), torch.stack(labels), self.cfg)

    def __call__(self, outputs, targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        return self.losses(outputs, targets)["loss"]
