"""MobileNetV1 architecture as data (Howard et al. 2017, arXiv:1704.04861, Table 1)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

#: The paper's resolution multiplier presets (Section 3.3, Table 7).
RESOLUTIONS: tuple[int, ...] = (224, 192, 160, 128)
#: The paper's width multiplier presets (Section 3.2, Table 6).
ALPHAS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
#: Input resolutions accepted anywhere (backbone, evaluation, exports): at least one 32-pixel stride; at most
#: 1024, where one batch-32 activation of the first layer already takes ~1 GB (100,000 would need ~112 GB).
MIN_RESOLUTION, MAX_RESOLUTION = 32, 1024

Activation = Literal["relu6", "relu", "leaky_relu"]
Padding = Literal["tf_same", "symmetric"]
BlockKind = Literal["conv", "dw_sep", "full_conv"]


@dataclass(frozen=True)
class LayerSpec:
    """One row group of Table 1: a layer kind, its output channels (at α = 1) and stride."""

    kind: BlockKind
    out_channels: int
    stride: int


#: Table 1 of the paper: a 3×3 stride-2 stem, then 13 depthwise-separable layers.
#: (The paper's table prints stride 2 for the second-to-last depthwise layer; the
#: text, the 7×7 output and TF-slim's ``mobilenet_v1.py`` all use stride 1.)
MOBILENET_V1_TABLE: tuple[LayerSpec, ...] = (
    LayerSpec("conv", 32, 2),
    LayerSpec("dw_sep", 64, 1),
    LayerSpec("dw_sep", 128, 2),
    LayerSpec("dw_sep", 128, 1),
    LayerSpec("dw_sep", 256, 2),
    LayerSpec("dw_sep", 256, 1),
    LayerSpec("dw_sep", 512, 2),
    *(LayerSpec("dw_sep", 512, 1) for _ in range(5)),
    LayerSpec("dw_sep", 1024, 2),
    LayerSpec("dw_sep", 1024, 1),
)


def full_conv_table(table: tuple[LayerSpec, ...] = MOBILENET_V1_TABLE) -> tuple[LayerSpec, ...]:
    """The same body with every depthwise-separable layer replaced by a full 3×3 conv (Table 4)."""
    return tuple(replace(s, kind="full_conv") if s.kind == "dw_sep" else s for s in table)


def scale_channels(channels: int, alpha: float, min_depth: int = 8) -> int:
    """Thin a layer by the width multiplier α as TF-slim does: ``max(int(c·α), min_depth)``."""
    return max(int(channels * alpha), min_depth)


@dataclass(frozen=True)
class MobileNetConfig:
    """Every knob of the backbone; validated on construction."""

    alpha: float = 1.0
    resolution: int = 224
    num_classes: int = 1000
    activation: Activation = "relu6"
    padding: Padding = "tf_same"
    bn_eps: float = 1e-3  # TF-slim's batch_norm epsilon
    bn_momentum: float = 0.1
    dropout: float = 0.0
    min_depth: int = 8
    table: tuple[LayerSpec, ...] = field(default=MOBILENET_V1_TABLE, repr=False)

    def __post_init__(self) -> None:
        validate_alpha(self.alpha)
        validate_resolution(self.resolution)
        if self.activation not in ("relu6", "relu", "leaky_relu"):
            raise ValueError(f"activation must be 'relu6', 'relu' or 'leaky_relu', got {self.activation!r}")
        if self.padding not in ("tf_same", "symmetric"):
            raise ValueError(f"padding must be 'tf_same' or 'symmetric', got {self.padding!r}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = no classifier), got {self.num_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.bn_eps <= 0:
            raise ValueError(f"bn_eps must be > 0, got {self.bn_eps}")

    def channels(self, spec: LayerSpec) -> int:
        return scale_channels(spec.out_channels, self.alpha, self.min_depth)

    @property
    def num_features(self) -> int:
        """Channels of the last feature map (1024·α)."""
        return self.channels(self.table[-1])


def validate_alpha(alpha: float) -> float:
    """The width multiplier must lie in (0, 1.5]."""
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 < float(alpha) <= 1.5:
        raise ValueError(f"alpha (width multiplier) must be in (0, 1.5], got {alpha!r}")
    return float(alpha)


def validate_resolution(resolution: int) -> int:
    """The input resolution must be an integer in [:data:`MIN_RESOLUTION`, :data:`MAX_RESOLUTION`]."""
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int)
        or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION
    ):
        raise ValueError(
            f"resolution must be an integer in [{MIN_RESOLUTION}, {MAX_RESOLUTION}] pixels, got {resolution!r}"
        )
    return resolution
