"""The shared MobileNetV1 backbone (Howard et al. 2017): the network as data, one builder, cost counting."""

from .config import ALPHAS, MOBILENET_V1_TABLE, RESOLUTIONS, LayerSpec, MobileNetConfig, scale_channels
from .cost import Cost, LayerCost, count_cost
from .mobilenet import FeatureInfo, MobileNetV1, check_image_batch, mobilenet_v1

__all__ = [
    "ALPHAS",
    "RESOLUTIONS",
    "MOBILENET_V1_TABLE",
    "LayerSpec",
    "MobileNetConfig",
    "scale_channels",
    "Cost",
    "LayerCost",
    "count_cost",
    "FeatureInfo",
    "MobileNetV1",
    "check_image_batch",
    "mobilenet_v1",
]
