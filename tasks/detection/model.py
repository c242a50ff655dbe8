"""SSD on the shared MobileNetV1 backbone (TF OD API ``ssd_mobilenet_v1``; Table 13 of Howard et al. 2017).

Backbone taps at stride 16 (``Conv2d_11``) and 32 (``Conv2d_13``), then four extra layers, each a 1×1
conv and a 3×3 stride-2 conv (depths 256/512, 128/256, 128/256, 64/128 × the depth multiplier), and a
box + class head on each of the six maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from mnet.backbone import check_image_batch, mobilenet_v1
from mnet.backbone.config import validate_resolution
from mnet.backbone.layers import ConvBNAct

from .anchors import AnchorConfig, generate_anchors
from .box_coder import BoxCoder
from .heads import SSDHead
from .loss import LossConfig, SSDCriterion
from .postprocess import PostprocessConfig, decode, select

#: (1×1 depth, 3×3 stride-2 depth) of the extra layers at depth multiplier 1 (ssd_mobilenet_v1_feature_extractor)
EXTRA_DEPTHS: tuple[tuple[int, int], ...] = ((256, 512), (128, 256), (128, 256), (64, 128))


@dataclass(frozen=True)
class SSDConfig:
    """Every knob of the detector. ``num_classes`` counts foreground classes (logit 0 is background);
    ``category_ids[i]`` is the dataset category id of class ``i + 1`` (None: the dataset's order)."""

    alpha: float = 1.0
    resolution: int = 300
    num_classes: int = 90
    tap_strides: tuple[int, ...] = (16, 32)
    extra_depths: tuple[tuple[int, int], ...] = EXTRA_DEPTHS
    min_depth: int = 16  # TF's SSD feature extractor floor for the extra layers
    head_kernel_size: int = 1
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    box_coder_scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    match_threshold: float = 0.5
    loss: LossConfig = field(default_factory=LossConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    #: input normalisation on [0, 1] RGB: (x − mean) / std (0.5, 0.5 → TF's [−1, 1])
    mean: float = 0.5
    std: float = 0.5
    category_ids: tuple[int, ...] | None = None
    bn_eps: float = 1e-3
    #: keep every BatchNorm in inference mode while training (weights imported with BN folded into
    #: conv biases carry no batch statistics; small fine-tuning batches give poor ones)
    freeze_bn: bool = False

    def __post_init__(self) -> None:
        validate_resolution(self.resolution)
        n_maps = len(self.tap_strides) + len(self.extra_depths)
        if n_maps != self.anchors.num_layers:
            raise ValueError(f"{n_maps} feature maps but the anchor config has {self.anchors.num_layers} layers")
        if self.category_ids is not None and len(self.category_ids) != self.num_classes:
            raise ValueError(f"category_ids has {len(self.category_ids)} entries for {self.num_classes} classes")


class SSDOutput(NamedTuple):
    """Raw outputs (train mode without targets): what :class:`~tasks.detection.loss.SSDCriterion` takes."""

    codes: torch.Tensor  # (N, A, 4)
    logits: torch.Tensor  # (N, A, C + 1)
    anchors: torch.Tensor  # (A, 4) normalised cxcywh
    image_size: tuple[int, int]  # (H, W) of the input tensor


class SSD(nn.Module):
    """Images (N, 3, H, W), normalised per ``config.mean/std``.

    Train mode with ``targets`` (per image a dict of ``boxes`` (G, 4) xyxy in pixels of the input
    tensor and ``labels`` (G,) in 1..num_classes) returns a dict of losses; without targets the raw
    :class:`SSDOutput` (for the engine's ``loss_fn(model(x), targets)``). Eval mode returns per image
    ``boxes`` (xyxy pixels of the input, or of ``image_sizes`` when given), ``scores``, ``labels``.
    """

    def __init__(self, config: SSDConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SSDConfig()
        self.backbone = mobilenet_v1(
            alpha=cfg.alpha, resolution=max(cfg.resolution, 32), num_classes=0, bn_eps=cfg.bn_eps
        )
        self.tap_indices = self.backbone.feature_indices(cfg.tap_strides)
        channels = [self.backbone.feature_info[i].num_chs for i in self.tap_indices]
        depth = lambda d: max(int(d * cfg.alpha), cfg.min_depth)
        extras = []
        for mid, out in cfg.extra_depths:
            extras.append(
                nn.Sequential(
                    ConvBNAct(channels[-1], depth(mid), 1, bn_eps=cfg.bn_eps),
                    ConvBNAct(depth(mid), depth(out), 3, 2, bn_eps=cfg.bn_eps),
                )
            )
            channels.append(depth(out))
        self.extras = nn.ModuleList(extras)
        self.feature_channels = channels
        self.head = SSDHead(channels, cfg.anchors.num_anchors_per_location(), cfg.num_classes, cfg.head_kernel_size)
        self.coder = BoxCoder(cfg.box_coder_scales)
        self.criterion = SSDCriterion(self.coder, cfg.loss, cfg.match_threshold)
        self._anchor_cache: dict[tuple, torch.Tensor] = {}

    # -- pieces ------------------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.backbone.forward_intermediates(x, self.tap_indices)
        y = feats[-1]
        for extra in self.extras:
            y = extra(y)
            feats.append(y)
        return feats

    def anchors_for(
        self, feature_shapes: Sequence[tuple[int, int]], image_size: tuple[int, int], device: torch.device | None = None
    ) -> torch.Tensor:
        """Normalised (cx, cy, w, h) anchors for these map shapes (cached)."""
        key = (tuple(feature_shapes), tuple(image_size), str(device))
        if key not in self._anchor_cache:
            self._anchor_cache[key] = generate_anchors(self.config.anchors, feature_shapes, image_size).to(device)
        return self._anchor_cache[key]

    def forward_raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """→ box codes (N, A, 4), class logits (N, A, C+1), anchors (A, 4) normalised cxcywh."""
        check_image_batch(x)
        feats = self.features(x)
        codes, logits = self.head(feats)
        anchors = self.anchors_for([tuple(f.shape[-2:]) for f in feats], tuple(x.shape[-2:]), x.device)
        return codes, logits, anchors

    def forward_decoded(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """→ boxes (N, A, 4) xyxy in [0, 1] and foreground scores (N, A, C): everything before NMS."""
        codes, logits, anchors = self.forward_raw(x)
        return decode(codes, logits, anchors, self.coder, self.config.postprocess.score_fn)

    # -- training / inference ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> SSD:
        super().train(mode)
        if mode and self.config.freeze_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(
        self,
        x: torch.Tensor,
        targets: list[dict[str, torch.Tensor]] | None = None,
        image_sizes: list[tuple[int, int]] | None = None,
    ):
        if self.training:
            codes, logits, anchors = self.forward_raw(x)
            out = SSDOutput(codes, logits, anchors, (int(x.shape[-2]), int(x.shape[-1])))
            return out if targets is None else self.criterion.losses(out, targets)
        sizes = image_sizes or [tuple(x.shape[-2:])] * x.shape[0]
        boxes, scores = self.forward_decoded(x)
        return select(boxes.detach(), scores.detach(), self.config.postprocess, sizes)


def ssd_mobilenet_v1(*, alpha: float = 1.0, resolution: int = 300, num_classes: int = 90, **kwargs) -> SSD:
    """Build SSD-MobileNetV1 (keyword-only); other keywords go to :class:`SSDConfig`."""
    return SSD(SSDConfig(alpha=alpha, resolution=resolution, num_classes=num_classes, **kwargs))
