"""The shared MobileNetV1 backbone (Howard et al. 2017): the network as data, one builder, cost counting.

The architecture table and knobs (``config``) import without torch; the network and cost counting are
imported on first use of their names.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import ALPHAS, MOBILENET_V1_TABLE, RESOLUTIONS, LayerSpec, MobileNetConfig, scale_channels

#: public name → the submodule that defines it (imported when the name is first used)
_LAZY = {
    "Cost": "cost",
    "LayerCost": "cost",
    "count_cost": "cost",
    "FeatureInfo": "mobilenet",
    "MobileNetV1": "mobilenet",
    "check_image_batch": "mobilenet",
    "mobilenet_v1": "mobilenet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ALPHAS", "RESOLUTIONS", "MOBILENET_V1_TABLE", "LayerSpec", "MobileNetConfig", "scale_channels", *_LAZY]
