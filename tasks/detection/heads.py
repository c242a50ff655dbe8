"""SSD prediction heads: one box and one class conv per feature map (TF OD API ``ConvolutionalBoxPredictor``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _flatten(x: torch.Tensor, per_anchor: int) -> torch.Tensor:
    """(N, A·K, H, W) → (N, H·W·A, K): row, column, then anchor — the order of the anchor generator."""
    n = x.shape[0]
    return x.permute(0, 2, 3, 1).reshape(n, -1, per_anchor)


class SSDHead(nn.Module):
    """Per map, a box conv (4 codes per anchor) and a class conv (``num_classes + 1`` logits per anchor,
    index 0 = background). ``kernel_size`` 1 is ssd_mobilenet_v1's config; 3 is the SSD paper's."""

    def __init__(
        self, in_channels: Sequence[int], anchors_per_location: Sequence[int], num_classes: int, kernel_size: int = 1
    ) -> None:
        super().__init__()
        if len(in_channels) != len(anchors_per_location):
            raise ValueError(f"{len(in_channels)} feature maps but {len(anchors_per_location)} anchor counts")
        if num_classes < 1:
            raise ValueError(f"num_classes (foreground) must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        pad = kernel_size // 2
        self.box = nn.ModuleList(
            nn.Conv2d(c, a * 4, kernel_size, padding=pad) for c, a in zip(in_channels, anchors_per_location)
        )
        self.cls = nn.ModuleList(
            nn.Conv2d(c, a * (num_classes + 1), kernel_size, padding=pad)
            for c, a in zip(in_channels, anchors_per_location)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.03)
                nn.init.zeros_(m.bias)

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """→ box codes (N, A, 4) and class logits (N, A, num_classes + 1)."""
        boxes = torch.cat([_flatten(b(f), 4) for b, f in zip(self.box, features)], dim=1)
        logits = torch.cat([_flatten(c(f), self.num_classes + 1) for c, f in zip(self.cls, features)], dim=1)
        return boxes, logits
