"""Centre-size box coding (Faster R-CNN / SSD; TF OD API ``FasterRcnnBoxCoder`` with scales 10, 10, 5, 5).

Boxes are (x1, y1, x2, y2), anchors (cx, cy, w, h), codes (tx, ty, tw, th):
``tx = 10·(cx − cx_a)/w_a``, ``tw = 5·log(w / w_a)``. (TF orders codes (ty, tx, th, tw); the converters
permute the box predictors' channels to this order.)
"""

from __future__ import annotations

import math

import torch

#: exp() input cap when decoding, as torchvision does (a box at most 1000/16 × its anchor)
_MAX_LOG_SCALE = math.log(1000.0 / 16)


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


class BoxCoder:
    """Encode boxes relative to anchors and decode them back; ``scales`` = (x, y, w, h) factors."""

    def __init__(self, scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0), eps: float = 1e-8) -> None:
        if len(scales) != 4 or any(s <= 0 for s in scales):
            raise ValueError(f"box coder scales must be 4 positive numbers, got {scales}")
        self.scales = tuple(float(s) for s in scales)
        self.eps = eps

    def encode(self, boxes_xyxy: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """(…, 4) xyxy boxes and (…, 4) cxcywh anchors (same frame) → (…, 4) codes."""
        sx, sy, sw, sh = self.scales
        cx, cy, w, h = xyxy_to_cxcywh(boxes_xyxy).unbind(-1)
        acx, acy, aw, ah = anchors.unbind(-1)
        aw, ah = aw + self.eps, ah + self.eps
        w, h = w + self.eps, h + self.eps
        return torch.stack(
            [sx * (cx - acx) / aw, sy * (cy - acy) / ah, sw * torch.log(w / aw), sh * torch.log(h / ah)], dim=-1
        )

    def decode(self, codes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """(…, 4) codes and cxcywh anchors → (…, 4) xyxy boxes in the anchors' frame."""
        sx, sy, sw, sh = self.scales
        tx, ty, tw, th = codes.unbind(-1)
        acx, acy, aw, ah = anchors.unbind(-1)
        cx = tx / sx * aw + acx
        cy = ty / sy * ah + acy
        w = torch.exp((tw / sw).clamp(max=_MAX_LOG_SCALE)) * aw
        h = torch.exp((th / sh).clamp(max=_MAX_LOG_SCALE)) * ah
        return cxcywh_to_xyxy(torch.stack([cx, cy, w, h], dim=-1))
