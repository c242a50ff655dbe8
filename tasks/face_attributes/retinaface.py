"""RetinaFace (Deng et al. 2019) with a MobileNetV1-0.25 body: faces, scores and 5 landmarks.

The layout of biubug6's widely used PyTorch release (``retinaface_mobilenet0.25_Final.pth``): the
backbone's stride 8/16/32 maps (``stage1/2/3``) → FPN (1×1 laterals, nearest upsampling, 3×3 merges) →
one SSH context module per level → per-level 1×1 heads with 2 anchors per cell (class 2, box 4,
landmarks 10). The body is the suite's backbone with symmetric padding, LeakyReLU 0.1 and BatchNorm
eps 1e-5, as trained. Priors are (cx, cy, w, h) in [0, 1]: min sizes [[10, 20], [32, 64], [128, 256]]
at steps [8, 16, 32]; offsets decode with variances (0.1, 0.2). Input: BGR pixels minus (104, 117, 123).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from mnet.backbone import mobilenet_v1

#: the anchors this checkpoint was trained with (the Face-Detector-1MB-with-landmark config, trained at 300 px);
#: biubug6's Pytorch_Retinaface uses ((16, 32), (64, 128), (256, 512)) — with those, this checkpoint's boxes
#: come out ~1.6× too large (checked against the face-api SSD's boxes on the sample photos)
MIN_SIZES: tuple[tuple[int, ...], ...] = ((10, 20), (32, 64), (128, 256))
STEPS: tuple[int, ...] = (8, 16, 32)
VARIANCES: tuple[float, float] = (0.1, 0.2)
BGR_MEAN: tuple[float, float, float] = (104.0, 117.0, 123.0)
RETINAFACE_WEIGHTS = "retinaface_mobilenet_v1_0.25_640.biubug6_widerface"


def conv_bn(inp: int, oup: int, kernel: int = 3, leaky: float | None = 0.1) -> nn.Sequential:
    """Conv (no bias) → BatchNorm → LeakyReLU (``leaky=None``: no activation), biubug6's unit."""
    act: nn.Module = nn.LeakyReLU(leaky, inplace=True) if leaky is not None else nn.Identity()
    return nn.Sequential(nn.Conv2d(inp, oup, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(oup), act)


class FPN(nn.Module):
    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.output1, self.output2, self.output3 = (conv_bn(c, out_channels, 1) for c in in_channels)
        self.merge1 = conv_bn(out_channels, out_channels)
        self.merge2 = conv_bn(out_channels, out_channels)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[-2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[-2:], mode="nearest"))
        return [o1, o2, o3]


class SSH(nn.Module):
    """Single-stage headless context module: 3×3, 5×5 (two 3×3) and 7×7 (three 3×3) branches."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv3X3 = conv_bn(in_channels, out_channels // 2, leaky=None)
        self.conv5X5_1 = conv_bn(in_channels, out_channels // 4)
        self.conv5X5_2 = conv_bn(out_channels // 4, out_channels // 4, leaky=None)
        self.conv7X7_2 = conv_bn(out_channels // 4, out_channels // 4)
        self.conv7x7_3 = conv_bn(out_channels // 4, out_channels // 4, leaky=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5X5_1(x)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(c5_1), self.conv7x7_3(self.conv7X7_2(c5_1))], dim=1))


class Head1x1(nn.Module):
    def __init__(self, in_channels: int, num_anchors: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.conv1x1 = nn.Conv2d(in_channels, num_anchors * size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1x1(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.size)


class RetinaFace(nn.Module):
    """Returns ``(loc (N, P, 4), logits (N, P, 2), landmarks (N, P, 10))`` for P priors."""

    def __init__(
        self, *, alpha: float = 0.25, resolution: int = 640, out_channels: int = 64, num_anchors: int = 2
    ) -> None:
        super().__init__()
        self.body = mobilenet_v1(
            alpha=alpha, resolution=resolution, num_classes=0, padding="symmetric", activation="leaky_relu", bn_eps=1e-5
        )
        idx = self.body.feature_indices(STEPS)
        chans = [self.body.feature_info[i].num_chs for i in idx]
        self.fpn = FPN(chans, out_channels)
        self.ssh1, self.ssh2, self.ssh3 = (SSH(out_channels, out_channels) for _ in STEPS)
        self.ClassHead = nn.ModuleList(Head1x1(out_channels, num_anchors, 2) for _ in STEPS)
        self.BboxHead = nn.ModuleList(Head1x1(out_channels, num_anchors, 4) for _ in STEPS)
        self.LandmarkHead = nn.ModuleList(Head1x1(out_channels, num_anchors, 10) for _ in STEPS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        levels = self.fpn(self.body.forward_strides(x, STEPS))
        feats = [self.ssh1(levels[0]), self.ssh2(levels[1]), self.ssh3(levels[2])]
        return tuple(
            torch.cat([h(f) for h, f in zip(heads, feats)], dim=1)  # type: ignore[return-value]
            for heads in (self.BboxHead, self.ClassHead, self.LandmarkHead)
        )


# -- priors and decoding (biubug6 layers/functions/prior_box.py, utils/box_utils.py) -----------------
@lru_cache(maxsize=8)
def priors(
    height: int, width: int, *, min_sizes: tuple[tuple[int, ...], ...] = MIN_SIZES, steps: tuple[int, ...] = STEPS
) -> torch.Tensor:
    """(P, 4) priors (cx, cy, w, h) relative to the image; per level row-major cells, each cell's sizes in order."""
    out = []
    for sizes, step in zip(min_sizes, steps):
        fh, fw = math.ceil(height / step), math.ceil(width / step)
        cy, cx = torch.meshgrid(
            (torch.arange(fh) + 0.5) * step / height, (torch.arange(fw) + 0.5) * step / width, indexing="ij"
        )
        per = [
            torch.stack([cx, cy, torch.full_like(cx, s / width), torch.full_like(cy, s / height)], dim=-1)
            for s in sizes
        ]
        out.append(torch.stack(per, dim=2).reshape(-1, 4))
    return torch.cat(out).to(torch.float32)


def decode_boxes(loc: torch.Tensor, pri: torch.Tensor, variances: tuple[float, float] = VARIANCES) -> torch.Tensor:
    """Offsets (P, 4) → boxes (P, 4) x1y1x2y2 relative to the image."""
    centre = pri[:, :2] + loc[:, :2] * variances[0] * pri[:, 2:]
    size = pri[:, 2:] * torch.exp(loc[:, 2:] * variances[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


def decode_landmarks(pre: torch.Tensor, pri: torch.Tensor, variances: tuple[float, float] = VARIANCES) -> torch.Tensor:
    """Offsets (P, 10) → five (x, y) points (P, 5, 2) relative to the image."""
    return pri[:, None, :2] + pre.reshape(-1, 5, 2) * variances[0] * pri[:, None, 2:]


class RetinaFaceWithNMS(nn.Module):
    """One image (1, 3, ρ, ρ) → its faces: ``boxes`` (K, 4) xyxy in [0, 1], ``scores`` (K,), ``labels``
    (K,) all 1 (face), ``landmarks`` (K, 5, 2) in [0, 1] (eyes, nose, mouth corners); priors, decoding
    and NMS (IoU ``nms_threshold``, at most ``max_faces``) inside the graph, as biubug6's demo does them.
    The score threshold is stricter than that demo's 0.6: the model was trained at 300 px and at larger
    inputs fires on textures."""

    dynamic_batch = False

    def __init__(
        self, model: RetinaFace, *, score_threshold: float = 0.9, nms_threshold: float = 0.4, max_faces: int = 100
    ) -> None:
        super().__init__()
        self.model = model
        self.score_threshold, self.nms_threshold, self.max_faces = score_threshold, nms_threshold, max_faces

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        from ..detection.postprocess import candidates, greedy_nms

        pri = priors(int(x.shape[-2]), int(x.shape[-1])).to(x.device)  # (a constant in a traced graph)
        loc, logits, landm = self.model(x)
        scores = logits[0].float().softmax(-1)[:, 1]
        keep, s = candidates(scores, self.score_threshold, 5000)
        boxes = decode_boxes(loc[0].float()[keep], pri[keep]).clamp(0, 1)
        kept = greedy_nms(boxes, s, self.nms_threshold, self.max_faces)
        idx = keep[kept]
        return {
            "boxes": boxes[kept],
            "scores": s[kept],
            "labels": torch.ones_like(idx),
            "landmarks": decode_landmarks(landm[0].float()[idx], pri[idx]),
            "finite": torch.isfinite(loc).flatten(1).all(1) & torch.isfinite(logits).flatten(1).all(1),
        }
