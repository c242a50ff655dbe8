"""Detections from raw SSD outputs: decode, score, then per-class batched NMS or TFLite's class-agnostic
"fast" NMS (``TFLite_Detection_PostProcess`` with ``use_regular_nms=false``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import nms

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


def candidates(scores: torch.Tensor, threshold: float, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, scores) of the ``top_k`` best entries of ``scores`` above ``threshold``.

    Top-k first, threshold second: the same set as thresholding first, without a data-dependent
    branch, so the traced graph (the exported inference network) runs the same selection."""
    top = scores.topk(min(top_k, scores.numel()))
    keep = top.values > threshold
    return top.indices[keep], top.values[keep]


#: up to this many kept boxes, :func:`greedy_nms` stops early in Python (one vectorised IoU row per kept
#: box, ~40 µs each); beyond it torchvision's C++ loop over all candidates is the cheaper one
EARLY_STOP_MAX_KEEP = 32


def greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, max_keep: int) -> torch.Tensor:
    """Indices kept by greedy NMS, best first, at most ``max_keep`` — exactly ``nms(...)[:max_keep]``.

    Greedy NMS keeps boxes in score order, so the first ``max_keep`` kept do not depend on the rest:
    for small ``max_keep`` (TFLite's SSD keeps 10) this stops there instead of suppressing among every
    candidate (all 1,917 anchors at the official score threshold of 1e-8). Under tracing (ONNX export)
    torchvision's ``nms`` runs, which has an ONNX symbolic."""
    if (
        max_keep > EARLY_STOP_MAX_KEEP
        or torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or boxes.shape[0] <= max_keep
    ):
        return nms(boxes, scores, iou_threshold)[:max_keep]
    order = scores.detach().argsort(descending=True).cpu().numpy()
    x1, y1, x2, y2 = boxes.detach().cpu().double().numpy()[order].T  # numpy: ~1 µs per op vs torch's ~10
    area = (x2 - x1) * (y2 - y1)
    remaining, kept = np.arange(len(order)), []
    while remaining.size and len(kept) < max_keep:
        i, rest = remaining[0], remaining[1:]
        kept.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        remaining = rest[inter <= iou_threshold * (area[i] + area[rest] - inter)]  # IoU <= threshold
    return torch.from_numpy(order[kept]).to(boxes.device)


def batched_greedy_nms(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float, max_keep: int
) -> torch.Tensor:
    """:func:`greedy_nms` within each label, for boxes normalised to [0, 1]: boxes of different labels
    are moved 2 apart so they never overlap (torchvision ``batched_nms``'s coordinate trick with a
    constant offset: no data-dependent branch, so a traced graph is right for any number of boxes)."""
    offsets = labels.to(boxes) * 2.0
    return greedy_nms(boxes + offsets[:, None], scores, iou_threshold, max_keep)


def _per_class(boxes: torch.Tensor, scores: torch.Tensor, cfg: PostprocessConfig):
    num_classes = scores.shape[1]
    keep, s = candidates(scores.flatten(), cfg.score_threshold, cfg.pre_nms_top_k)
    anchor_idx, labels = keep // num_classes, keep % num_classes
    b = boxes[anchor_idx]
    kept = batched_greedy_nms(b, s, labels, cfg.iou_threshold, cfg.max_detections)
    return b[kept], s[kept], labels[kept] + 1


def _fast(boxes: torch.Tensor, scores: torch.Tensor, cfg: PostprocessConfig):
    best, labels = scores.max(dim=1)
    keep, s = candidates(best, cfg.score_threshold, cfg.pre_nms_top_k)
    b, l = boxes[keep], labels[keep]
    kept = greedy_nms(b, s, cfg.iou_threshold, cfg.max_detections)
    return b[kept], s[kept], l[kept] + 1


NMS_MODES = {"per_class": _per_class, "fast": _fast}


def decode(
    box_codes: torch.Tensor, logits: torch.Tensor, anchors: torch.Tensor, coder: BoxCoder, score_fn: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, A, 4) codes and (N, A, C+1) logits against normalised anchors → ``boxes`` (N, A, 4) xyxy in
    [0, 1] and foreground ``scores`` (N, A, C)."""
    boxes = coder.decode(box_codes.float(), anchors).clamp(0, 1)
    return boxes, SCORE_FNS[score_fn](logits.float())


def select_one(boxes: torch.Tensor, scores: torch.Tensor, cfg: PostprocessConfig):
    """One image's (A, 4) boxes and (A, C) scores → kept ``boxes`` (K, 4), ``scores`` (K,), 1-based
    ``labels`` (K,), best first (per-class or "fast" NMS per ``cfg.nms``)."""
    return NMS_MODES[cfg.nms](boxes, scores, cfg)


def to_pixels(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Normalised detections → the ``{"boxes", "scores", "labels"}`` dict in pixels of ``size`` = (H, W)."""
    h, w = size
    return {"boxes": boxes * boxes.new_tensor([w, h, w, h]), "scores": scores, "labels": labels}


def select(
    boxes: torch.Tensor, scores: torch.Tensor, cfg: PostprocessConfig, image_sizes: Sequence[tuple[int, int]]
) -> list[dict[str, torch.Tensor]]:
    """:func:`decode` 's (N, A, 4) boxes and (N, A, C) scores → per image a dict of ``boxes`` (K, 4) xyxy
    in pixels of ``image_sizes[i]`` = (H, W), ``scores`` (K,), ``labels`` (K,) (1-based class index; 0
    is background and never returned), best first."""
    return [to_pixels(*select_one(b, s, cfg), size) for b, s, size in zip(boxes, scores, image_sizes)]


def postprocess(
    box_codes: torch.Tensor,
    logits: torch.Tensor,
    anchors: torch.Tensor,
    coder: BoxCoder,
    cfg: PostprocessConfig,
    image_sizes: Sequence[tuple[int, int]],
) -> list[dict[str, torch.Tensor]]:
    """Raw SSD outputs → per-image detections: :func:`decode` then :func:`select`."""
    return select(*decode(box_codes.detach(), logits.detach(), anchors, coder, cfg.score_fn), cfg, image_sizes)
