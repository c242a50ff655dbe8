"""Anchor ↔ ground-truth matching (TF OD API ``ArgMaxMatcher`` with ``force_match_for_each_row``)."""

from __future__ import annotations

import torch
from torchvision.ops import box_iou

from .box_coder import cxcywh_to_xyxy

#: match value of an anchor that is background
BACKGROUND = -1
#: match value of an anchor between the two thresholds (neither positive nor negative)
IGNORE = -2


def match(iou: torch.Tensor, threshold: float = 0.5, unmatched_threshold: float | None = None) -> torch.Tensor:
    """For a (G, A) IoU matrix return (A,) indices of the matched ground truth, or BACKGROUND / IGNORE.

    An anchor matches its best ground truth when IoU ≥ ``threshold``; below ``unmatched_threshold``
    (default: the same) it is background, in between ignored. Every ground truth is then forced onto
    the anchor it overlaps most, so no object goes unmatched (SSD, Liu et al. 2016, Sec. 2.2).
    """
    unmatched_threshold = threshold if unmatched_threshold is None else unmatched_threshold
    if unmatched_threshold > threshold:
        raise ValueError(f"unmatched_threshold {unmatched_threshold} must be <= threshold {threshold}")
    num_gt, num_anchors = iou.shape
    if num_gt == 0:
        return torch.full((num_anchors,), BACKGROUND, dtype=torch.long, device=iou.device)
    best_iou, matches = iou.max(dim=0)
    matches = matches.clone()
    matches[best_iou < threshold] = IGNORE
    matches[best_iou < unmatched_threshold] = BACKGROUND
    best_anchor = iou.argmax(dim=1)  # (G,)
    matches[best_anchor] = torch.arange(num_gt, device=iou.device)
    return matches


def assign(
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    anchors: torch.Tensor,
    threshold: float = 0.5,
    unmatched_threshold: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Match one image: gt (G, 4) xyxy and labels (G,) (1-based, 0 = background) against (A, 4) cxcywh
    anchors in the same frame. Returns per-anchor labels (A,) (0 background, -1 ignored), the matched
    boxes (A, 4) (the anchor's own box where unmatched) and the raw match vector."""
    anchors_xyxy = cxcywh_to_xyxy(anchors)
    matches = match(box_iou(gt_boxes, anchors_xyxy), threshold, unmatched_threshold)
    pos = matches >= 0
    labels = torch.zeros(len(anchors), dtype=torch.long, device=anchors.device)
    labels[matches == IGNORE] = -1
    labels[pos] = gt_labels[matches[pos]].long()
    boxes = anchors_xyxy.clone()
    boxes[pos] = gt_boxes[matches[pos]].to(boxes.dtype)
    return labels, boxes, matches
