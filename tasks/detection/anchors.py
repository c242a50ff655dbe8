"""SSD anchors computed from a config, as the TF Object Detection API's ``create_ssd_anchors`` does.

``ssd_mobilenet_v1_coco.config``: 6 layers, min scale 0.2, max scale 0.95, aspect ratios 1, 2, 1/2, 3,
1/3 plus one box at the geometric mean of this scale and the next, and the lowest layer reduced to
(0.1, 1), (s, 2), (s, 1/2). At 300×300 the maps are 19, 10, 5, 3, 2, 1 → 19²·3 + (10²+5²+3²+2²+1)·6 =
1,917 anchors. Anchors are in normalised image coordinates as (cx, cy, w, h).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AnchorConfig:
    """The ``ssd_anchor_generator`` block of a TF OD API config (defaults: ssd_mobilenet_v1_coco)."""

    num_layers: int = 6
    min_scale: float = 0.2
    max_scale: float = 0.95
    #: the config file writes 1/3 as 0.3333; kept literally so anchors equal the official ones
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = True
    base_anchor_size: tuple[float, float] = (1.0, 1.0)  # (height, width)
    #: TF OD API releases of 2017 (face-api.js's detector) put the interpolated box right after the
    #: aspect-ratio-1 box instead of last
    interpolated_after_unit_ratio: bool = False

    def __post_init__(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {self.min_scale}, {self.max_scale}")
        if not self.aspect_ratios or any(a <= 0 for a in self.aspect_ratios):
            raise ValueError(f"aspect_ratios must be positive, got {self.aspect_ratios}")
        if self.interpolated_after_unit_ratio and 1.0 not in self.aspect_ratios:
            raise ValueError("interpolated_after_unit_ratio needs 1.0 among the aspect_ratios")

    def scales(self) -> list[float]:
        """Linearly spaced scales, one per layer, then 1.0 (used only for the interpolated box)."""
        n = self.num_layers
        step = (self.max_scale - self.min_scale) / (n - 1) if n > 1 else 0.0
        return [self.min_scale + step * i for i in range(n)] + [1.0]

    def box_specs(self) -> list[list[tuple[float, float]]]:
        """Per layer, the (scale, aspect ratio) of each anchor at one location."""
        scales = self.scales()
        specs = []
        for layer, (scale, scale_next) in enumerate(zip(scales[:-1], scales[1:])):
            if layer == 0 and self.reduce_boxes_in_lowest_layer:
                layer_specs = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
            else:
                layer_specs = [(scale, a) for a in self.aspect_ratios]
                if self.interpolated_scale_aspect_ratio > 0:
                    box = (math.sqrt(scale * scale_next), self.interpolated_scale_aspect_ratio)
                    at = self.aspect_ratios.index(1.0) + 1 if self.interpolated_after_unit_ratio else len(layer_specs)
                    layer_specs.insert(at, box)
            specs.append(layer_specs)
        return specs

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) for s in self.box_specs()]


def generate_anchors(
    config: AnchorConfig,
    feature_shapes: Sequence[tuple[int, int]],
    image_size: tuple[int, int],
) -> torch.Tensor:
    """All anchors, (A, 4) normalised (cx, cy, w, h), ordered map by map, then row, column, box.

    ``feature_shapes`` are the (H, W) of the maps the heads see (under TF SAME padding,
    ``ceil(size / stride)``); the grid stride is ``1 / H`` and the offset half a cell, as in TF's
    ``MultipleGridAnchorGenerator``. For non-square images the base size is scaled so anchors are
    square in pixels relative to the shorter side.
    """
    if len(feature_shapes) != config.num_layers:
        raise ValueError(f"anchor config has {config.num_layers} layers but got {len(feature_shapes)} feature maps")
    im_h, im_w = image_size
    short = min(im_h, im_w)
    base_h = config.base_anchor_size[0] * short / im_h
    base_w = config.base_anchor_size[1] * short / im_w
    out = []
    for (fh, fw), specs in zip(feature_shapes, config.box_specs()):
        scales = torch.tensor([s for s, _ in specs], dtype=torch.float64)
        ratios = torch.tensor([a for _, a in specs], dtype=torch.float64).sqrt()
        heights = scales / ratios * base_h
        widths = scales * ratios * base_w
        cy = (torch.arange(fh, dtype=torch.float64) + 0.5) / fh
        cx = (torch.arange(fw, dtype=torch.float64) + 0.5) / fw
        cy, cx = torch.meshgrid(cy, cx, indexing="ij")  # (fh, fw)
        k = len(specs)
        boxes = torch.stack(
            [
                cx[..., None].expand(fh, fw, k),
                cy[..., None].expand(fh, fw, k),
                widths.expand(fh, fw, k),
                heights.expand(fh, fw, k),
            ],
            dim=-1,
        )
        out.append(boxes.reshape(-1, 4))
    return torch.cat(out).float()
