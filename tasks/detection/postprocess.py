"""Detections from raw SSD outputs: decode, score, then per-class batched NMS or TFLite's class-agnostic
"fast" NMS (``TFLite_Detection_PostProcess`` with ``use_regular_nms=false``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torchvision.ops import batched_nms, nms

from .box_coder import BoxCoder

#: logits (…, C+1) → foreground scores (…, C)
SCORE_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax": lambda x: x.softmax(-1)[..., 1:],
    "sigmoid": lambda x: x[..., 1:].sigmoid(),
}


@dataclass(frozen=True)
class PostprocessConfig:
    score_fn: str = "softmax"
    #: "per_class": NMS within each class (torchvision batched_nms); "fast": one class per anchor
    #: (its best), class-agnostic NMS — TFLite's default, at most 10 detections in the official model
    nms: str = "per_class"
    score_threshold: float = 0.01
    iou_threshold: float = 0.6
    max_detections: int = 100
    pre_nms_top_k: int = 5000

    def __post_init__(self) -> None:
        if self.score_fn not in SCORE_FNS:
            raise ValueError(f"score_fn must be one of {sorted(SCORE_FNS)}, got {self.score_fn!r}")
        if self.nms not in NMS_MODES:
            raise ValueError(f"nms must be one of {sorted(NMS_MODES)}, got {self.nms!r}")
        if not 0 <= self.iou_threshold <= 1:
            raise ValueError(f"iou_threshold must be in [0, 1], got {self.iou_threshold}")
        if self.max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {self.max_detections}")


def _per_class(boxes: torch.Tensor, scores: torch.Tensor, cfg: PostprocessConfig):
    num_classes = scores.shape[1]
    flat = scores.flatten()
    keep = torch.nonzero(flat > cfg.score_threshold).squeeze(1)
    if keep.numel() > cfg.pre_nms_top_k:
        keep = keep[flat[keep].topk(cfg.pre_nms_top_k).indices]
    anchor_idx, labels = keep // num_classes, keep % num_classes
    b, s = boxes[anchor_idx], flat[keep]
    kept = batched_nms(b, s, labels, cfg.iou_threshold)[: cfg.max_detections]
    return b[kept], s[kept], labels[kept] + 1


def _fast(boxes: torch.Tensor, scores: torch.Tensor, cfg: PostprocessConfig):
    best, labels = scores.max(dim=1)
    keep = torch.nonzero(best > cfg.score_threshold).squeeze(1)
    if keep.numel() > cfg.pre_nms_top_k:
        keep = keep[best[keep].topk(cfg.pre_nms_top_k).indices]
    b, s, l = boxes[keep], best[keep], labels[keep]
    kept = nms(b, s, cfg.iou_threshold)[: cfg.max_detections]
    return b[kept], s[kept], l[kept] + 1


NMS_MODES = {"per_class": _per_class, "fast": _fast}


def postprocess(
    box_codes: torch.Tensor,
    logits: torch.Tensor,
    anchors: torch.Tensor,
    coder: BoxCoder,
    cfg: PostprocessConfig,
    image_sizes: list[tuple[int, int]],
) -> list[dict[str, torch.Tensor]]:
    """(N, A, 4) codes and (N, A, C+1) logits against normalised anchors → per image a dict of
    ``boxes`` (K, 4) xyxy in pixels of ``image_sizes[i]`` = (H, W), ``scores`` (K,), ``labels`` (K,)
    (1-based class index; 0 is background and never returned), best first."""
    boxes = coder.decode(box_codes.detach().float(), anchors).clamp(0, 1)
    scores = SCORE_FNS[cfg.score_fn](logits.detach().float())
    out = []
    for b, s, (h, w) in zip(boxes, scores, image_sizes):
        kb, ks, kl = NMS_MODES[cfg.nms](b, s, cfg)
        kb = kb * kb.new_tensor([w, h, w, h])
        out.append({"boxes": kb, "scores": ks, "labels": kl})
    return out
