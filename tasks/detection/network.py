"""SSD split for runtimes (``Task.network`` / ``Task.with_network``): the exported graph and what runs after it.

The graph ends at decoded boxes and scores, not at raw box codes and logits: anchor generation, the
box coder (scales 10, 10, 5, 5) and the score function (softmax/sigmoid) become constants and a few
elementwise ops inside the graph (~1,917 × 95 values at 300 px: microseconds), so an exported file
needs no anchors or coder settings beside it, and what is left outside is NMS alone — the same
:func:`~tasks.detection.postprocess.select_one` that PyTorch runs, or, with ``--with-postprocess``,
ONNX ``NonMaxSuppression`` inside the graph (:class:`SSDWithNMS`). The cost: ``--int8`` quantizes the
decode with the convolutions; on COCO val2017 that ended 0.5 AP below fp32 (docs/deploy.md), within
what int8 loses anyway, so the simpler file wins.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mnet.tasks.runtime.session import Runtime, WithNetwork, torch_threads

from .model import SSD
from .postprocess import PostprocessConfig, select, select_one, to_pixels

#: network outputs: (boxes, scores) for every anchor, or (boxes, scores, labels) after in-graph NMS
N_RAW_OUTPUTS, N_NMS_OUTPUTS = 2, 3


class SSDNetwork(nn.Module):
    """Images (N, 3, H, W) → ``boxes`` (N, A, 4) xyxy in [0, 1], ``scores`` (N, A, C) per foreground class."""

    def __init__(self, ssd: SSD) -> None:
        super().__init__()
        self.ssd = ssd

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ssd.forward_decoded(x)


class SSDWithNMS(nn.Module):
    """One image (1, 3, H, W) → its detections: ``boxes`` (K, 4) xyxy in [0, 1], ``scores`` (K,),
    ``labels`` (K,) 1-based, best first, with the model's NMS settings fixed in the graph. Batch 1:
    the number of detections differs per image (TFLite's detection post-process is batch 1 too)."""

    #: exported and checked at batch 1 (``Task.export_network``)
    dynamic_batch = False

    def __init__(self, ssd: SSD) -> None:
        super().__init__()
        self.network = SSDNetwork(ssd)
        self.cfg = ssd.config.postprocess

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        boxes, scores = self.network(x)
        return select_one(boxes[0], scores[0], self.cfg)


def detections(
    outputs: Sequence[torch.Tensor], cfg: PostprocessConfig, image_sizes: Sequence[tuple[int, int]]
) -> list[dict[str, torch.Tensor]]:
    """Network outputs (either kind) for a batch → per image ``boxes`` in pixels of (H, W), ``scores``, ``labels``."""
    if len(outputs) == N_RAW_OUTPUTS:
        with torch_threads(1):
            return select(outputs[0], outputs[1], cfg, image_sizes)
    if len(outputs) == N_NMS_OUTPUTS:
        if len(image_sizes) != 1:
            raise ValueError(f"an SSD exported with its NMS runs one image at a time, got {len(image_sizes)}")
        return [to_pixels(*outputs, image_sizes[0])]
    raise ValueError(
        f"not an SSD network: {len(outputs)} outputs (expected boxes + scores, or boxes + scores + labels after NMS)"
    )


class SSDOnRuntime(WithNetwork):
    """Behaves like :class:`SSD` in eval mode (``model(x, image_sizes=...)`` → per-image detections), its
    network running in a :class:`~tasks.runtime.Runtime`; NMS (or nothing, if the graph has it) follows
    with ``self.config.postprocess``, which ``with_postprocess`` may change as on an SSD."""

    def __init__(self, model: SSD, network: Runtime) -> None:
        if model is None or not hasattr(model, "config"):
            raise ValueError(
                "an SSD network needs its model config (an exported file records it as "
                "mnet.model_kwargs: export it again with `mnet export`)"
            )
        super().__init__(model, network)
        self.config = model.config
        session = getattr(network, "session", None)  # an ONNX file exported --with-postprocess
        self.nms_in_graph = session is not None and len(session.get_outputs()) == N_NMS_OUTPUTS

    def __call__(
        self, x: torch.Tensor, targets: None = None, image_sizes: list[tuple[int, int]] | None = None
    ) -> list[dict[str, torch.Tensor]]:
        if targets is not None:
            raise ValueError("an SSD on a runtime only infers; train the PyTorch model for losses")
        sizes = image_sizes or [tuple(x.shape[-2:])] * x.shape[0]
        if self.nms_in_graph:  # a batch-1 graph: one image at a time
            return [
                d
                for i in range(len(x))
                for d in detections(self.network(x[i : i + 1]), self.config.postprocess, sizes[i : i + 1])
            ]
        return detections(self.network(x), self.config.postprocess, sizes)
