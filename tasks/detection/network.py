"""SSD as one inference network (``DetectionTask.inference_network``): what PyTorch runs and ``mnet export`` writes.

The graph holds everything between the photo's pixels and the final detections: the convolutions, the
anchors and the box coder (scales 10, 10, 5, 5) as constants, the score function (softmax/sigmoid) and
the model's NMS (ONNX ``NonMaxSuppression``, with TFLite's class-agnostic "fast" mode or per-class), so
an exported file needs nothing beside it but resizing and normalising before and drawing after. One
image at a time: the number of detections differs per image (TFLite's detection post-process is batch
1 too). Outputs are normalised to [0, 1]; :mod:`mnet.tasks.decode` maps them to the photo's pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from .model import SSD
from .postprocess import select_one


class SSDWithNMS(nn.Module):
    """One image (1, 3, H, W) → ``boxes`` (K, 4) xyxy in [0, 1], ``scores`` (K,), ``labels`` (K,)
    1-based, best first, with the model's NMS settings (``ssd.config.postprocess``) fixed in the graph,
    and ``finite``: whether every box and score before the selection was finite."""

    #: exported and checked at batch 1
    dynamic_batch = False

    def __init__(self, ssd: SSD) -> None:
        super().__init__()
        self.ssd = ssd
        self.cfg = ssd.config.postprocess

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        boxes, scores = self.ssd.forward_decoded(x)
        kept_boxes, kept_scores, labels = select_one(boxes[0], scores[0], self.cfg)
        # NaN scores never pass the score threshold: without this flag, broken weights would find nothing
        finite = torch.isfinite(boxes).flatten(1).all(1) & torch.isfinite(scores).flatten(1).all(1)
        return {"boxes": kept_boxes, "scores": kept_scores, "labels": labels, "finite": finite}
