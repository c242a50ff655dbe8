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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from mnet.backbone import mobilenet_v1

from ..base import Task, register_task

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


@register_task
class FaceDetectionTask(Task):
    """RetinaFace face + 5-landmark detector on the backbone (the suite's second face detector)."""

    name = "face_detection"
    description = "RetinaFace face + landmark detection (imported MobileNet-0.25 WIDER FACE model)"

    def build_model(self, *, alpha: float, resolution: int, **kwargs) -> nn.Module:
        return RetinaFace(alpha=alpha, resolution=resolution, **kwargs)

    def postprocess_options(self, model: nn.Module | None) -> dict[str, Any]:
        return {"input_size": int(model.body.config.resolution)} if model is not None else {}

    def postprocess(
        self,
        outputs: Any,
        *,
        labels: Sequence[str] | None = None,
        top_k: int = 5,
        image_sizes: Sequence[tuple[int, int]] | None = None,
        input_size: int | None = None,
        score_threshold: float = 0.9,
        nms_threshold: float = 0.4,
        **_: Any,
    ) -> list[dict[str, Any]]:
        """(loc, logits, landmarks) numpy outputs → per image ``{"detections": [{"box", "score", "label":
        "face", "landmarks": [[x, y] × 5]}]}`` in pixels of the original (W, H) ``image_sizes``."""
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 3:
            raise ValueError("face_detection postprocess expects RetinaFace's (loc, logits, landmarks) outputs")
        if input_size is None:
            raise ValueError("face_detection postprocess needs the network's input_size (the priors depend on it)")
        loc, logits, landm = (torch.from_numpy(np.asarray(o, dtype=np.float32)) for o in outputs)
        sizes = image_sizes or [(input_size, input_size)] * len(loc)
        results = []
        for i, wh in enumerate(sizes):
            f = faces_from_outputs(
                loc[i],
                logits[i],
                landm[i],
                (input_size, input_size),
                tuple(wh),
                score_threshold=score_threshold,
                nms_threshold=nms_threshold,
            )
            results.append(
                {
                    "detections": [
                        {
                            "box": [round(v, 2) for v in b],
                            "score": s,
                            "index": 1,
                            "label": "face",
                            "landmarks": [[round(v, 2) for v in pt] for pt in lm],
                        }
                        for b, s, lm in zip(f.boxes.tolist(), f.scores.tolist(), f.landmarks.tolist())
                    ]
                }
            )
        return results


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


@dataclass
class Faces:
    boxes: torch.Tensor  # (K, 4) xyxy pixels
    scores: torch.Tensor  # (K,)
    landmarks: torch.Tensor  # (K, 5, 2) pixels: eyes, nose, mouth corners


@lru_cache(maxsize=2)
def retinaface(weights: str = RETINAFACE_WEIGHTS) -> RetinaFace:
    from mnet.weights import build_pretrained

    return build_pretrained(weights)[0]


@torch.inference_mode()
def detect_faces_retina(
    image: np.ndarray,
    *,
    model: RetinaFace | None = None,
    score_threshold: float = 0.9,
    nms_threshold: float = 0.4,
    max_side: int = 640,
) -> Faces:
    """Faces in one RGB uint8 (H, W, 3) image. Images larger than ``max_side`` are downscaled first
    (the model was trained at 300 px; at full resolution it fires on textures). NMS at IoU 0.4 as
    biubug6's demo; the score threshold is stricter than its 0.6 for the same reason."""
    model = model or retinaface()
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB (H, W, 3) image, got shape {arr.shape}")
    h, w = arr.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(arr[:, :, ::-1], dtype=np.float32)).permute(2, 0, 1)[None]
    x = x - torch.tensor(BGR_MEAN).view(1, 3, 1, 1)
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", align_corners=False)
    loc, logits, landm = model(x)
    return faces_from_outputs(
        loc[0],
        logits[0],
        landm[0],
        (int(x.shape[2]), int(x.shape[3])),
        (w, h),
        score_threshold=score_threshold,
        nms_threshold=nms_threshold,
    )


def faces_from_outputs(
    loc: torch.Tensor,
    logits: torch.Tensor,
    landm: torch.Tensor,
    input_hw: tuple[int, int],
    image_wh: tuple[int, int],
    *,
    score_threshold: float = 0.9,
    nms_threshold: float = 0.4,
) -> Faces:
    """One image's raw outputs (P, 4), (P, 2), (P, 10) for an input of ``input_hw`` → faces in pixels of
    the original image (``image_wh`` = (W, H)): decode against the priors, softmax, NMS, threshold."""
    pri = priors(*input_hw)
    if len(pri) != len(loc):
        raise ValueError(
            f"RetinaFace outputs have {len(loc)} priors, a {input_hw[0]}×{input_hw[1]} input has {len(pri)}"
        )
    scores = logits.float().softmax(dim=1)[:, 1]
    size = torch.tensor(image_wh, dtype=torch.float32)
    boxes = decode_boxes(loc.float(), pri) * size.repeat(2)
    points = decode_landmarks(landm.float(), pri) * size
    keep = scores >= min(score_threshold, 0.02)
    boxes, scores, points = boxes[keep], scores[keep], points[keep]
    keep = nms(boxes, scores, nms_threshold)
    keep = keep[scores[keep] >= score_threshold]
    return Faces(boxes[keep], scores[keep], points[keep])
