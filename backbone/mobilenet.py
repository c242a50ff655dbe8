"""MobileNetV1: one builder turns the layer table into modules and records ``feature_info``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .config import MobileNetConfig, full_conv_table
from .layers import ConvBNAct, DepthwiseSeparable


@dataclass(frozen=True)
class FeatureInfo:
    """What one layer outputs: its index (0 = stem, i = TF-slim's ``Conv2d_i``), channels, stride."""

    index: int
    module: str
    num_chs: int
    reduction: int


def check_image_batch(x: torch.Tensor) -> None:
    """Raise a ValueError naming the shape unless ``x`` is an (N, 3, H, W) batch."""
    if x.ndim != 4:
        raise ValueError(f"expected an image batch of rank 4 (N, 3, H, W), got rank {x.ndim} shape {tuple(x.shape)}")
    if x.shape[1] != 3:
        raise ValueError(f"expected 3 input channels (RGB), got {x.shape[1]} in shape {tuple(x.shape)}")


class ClassifierHead(nn.Module):
    """Global average pool → dropout → fully connected (Table 1's last rows)."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.drop = nn.Dropout(dropout)
        self.fc: nn.Module = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.flatten(self.pool(x)))
        return x if pre_logits else self.fc(x)


class MobileNetV1(nn.Module):
    """MobileNetV1 with width multiplier α and any input resolution ≥ 32.

    ``layers[0]`` is the stem conv and ``layers[i]`` the i-th depthwise-separable layer, the same
    numbering as TF-slim's ``Conv2d_i`` scopes, so converted checkpoints map one to one.
    """

    def __init__(self, config: MobileNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MobileNetConfig()
        kw = dict(
            padding=config.padding, activation=config.activation, bn_eps=config.bn_eps, bn_momentum=config.bn_momentum
        )
        layers: list[nn.Module] = []
        self.feature_info: list[FeatureInfo] = []
        in_chs, reduction = 3, 1
        for i, spec in enumerate(config.table):
            out_chs = config.channels(spec)
            if spec.kind == "dw_sep":
                layer: nn.Module = DepthwiseSeparable(in_chs, out_chs, spec.stride, **kw)
            else:  # "conv" (the stem) and "full_conv" (Table 4's baseline) are plain 3×3 convs
                layer = ConvBNAct(in_chs, out_chs, 3, spec.stride, **kw)
            layers.append(layer)
            reduction *= spec.stride
            self.feature_info.append(FeatureInfo(i, f"layers.{i}", out_chs, reduction))
            in_chs = out_chs
        self.layers = nn.Sequential(*layers)
        self.num_features = in_chs
        self.num_classes = config.num_classes
        self.head = ClassifierHead(in_chs, config.num_classes, config.dropout)

    # -- uniform model API ---------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x)
        return self.layers(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, dropout: float | None = None) -> None:
        """Replace the classifier with a freshly initialised one (0 = none, features only)."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = num_classes
        self.head.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if dropout is not None:
            self.head.drop = nn.Dropout(dropout)

    # -- multi-scale features ------------------------------------------------------------------
    def feature_indices(self, strides: Iterable[int]) -> list[int]:
        """Index of the last layer at each output stride (e.g. 16 → 11, 32 → 13 at any α)."""
        out = []
        for s in strides:
            idx = [f.index for f in self.feature_info if f.reduction == s]
            if not idx:
                have = sorted({f.reduction for f in self.feature_info})
                raise ValueError(f"no feature map at stride {s}; strides available: {have}")
            out.append(idx[-1])
        return out

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """Feature maps after the given layer indices, in the order asked, running only as far as needed."""
        check_image_batch(x)
        n = len(self.layers)
        for i in indices:
            if not 0 <= i < n:
                raise ValueError(f"layer index {i} out of range 0..{n - 1}")
        wanted, out = set(indices), {}
        for i, layer in enumerate(self.layers[: max(indices) + 1]):
            x = layer(x)
            if i in wanted:
                out[i] = x
        return [out[i] for i in indices]

    def forward_strides(self, x: torch.Tensor, strides: Sequence[int] = (8, 16, 32)) -> list[torch.Tensor]:
        """Feature maps at the given output strides (4, 8, 16, 32; 2 is the stem)."""
        return self.forward_intermediates(x, self.feature_indices(strides))


def mobilenet_v1(
    *,
    alpha: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    full_conv: bool = False,
    **kwargs,
) -> MobileNetV1:
    """Build MobileNetV1 (keyword-only). ``full_conv=True`` gives Table 4's full-convolution baseline.

    Other keywords (``activation``, ``padding``, ``bn_eps``, ``bn_momentum``, ``dropout``,
    ``min_depth``) go to :class:`MobileNetConfig`.
    """
    if full_conv:
        kwargs["table"] = full_conv_table()
    return MobileNetV1(MobileNetConfig(alpha=alpha, resolution=resolution, num_classes=num_classes, **kwargs))
