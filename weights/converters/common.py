"""Layout helpers shared by converters: TF → PyTorch kernels, BatchNorm (real or folded), heads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ConvertedWeights:
    """A suite state dict (numpy arrays) plus metadata the converter wants recorded."""

    state_dict: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)


def hwio_to_oihw(w: np.ndarray) -> np.ndarray:
    """TF conv kernel [H, W, in, out] → PyTorch [out, in, H, W]."""
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1), dtype=np.float32)


def depthwise_hwcm_to_oihw(w: np.ndarray) -> np.ndarray:
    """TF depthwise kernel [H, W, C, multiplier] → PyTorch grouped conv [C·multiplier, 1, H, W]."""
    h, wd, c, m = w.shape
    return np.ascontiguousarray(w.reshape(h, wd, c * m).transpose(2, 0, 1)[:, None], dtype=np.float32)


def ohwi_to_oihw(w: np.ndarray) -> np.ndarray:
    """TFLite conv kernel [out, H, W, in] → PyTorch [out, in, H, W]."""
    return np.ascontiguousarray(w.transpose(0, 3, 1, 2), dtype=np.float32)


def tflite_depthwise_to_oihw(w: np.ndarray) -> np.ndarray:
    """TFLite depthwise kernel [1, H, W, C·multiplier] → PyTorch [C·multiplier, 1, H, W]."""
    return np.ascontiguousarray(w[0].transpose(2, 0, 1)[:, None], dtype=np.float32)


def batchnorm(
    prefix: str, gamma: np.ndarray | None, beta: np.ndarray, mean: np.ndarray, var: np.ndarray
) -> dict[str, np.ndarray]:
    """A BatchNorm2d's tensors (``gamma`` None = TF-slim ``scale=False``: weight 1)."""
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return {
        f"{prefix}.weight": f32(np.ones_like(beta) if gamma is None else gamma),
        f"{prefix}.bias": f32(beta),
        f"{prefix}.running_mean": f32(mean),
        f"{prefix}.running_var": f32(var),
    }


def folded_bias_as_batchnorm(prefix: str, bias: np.ndarray, eps: float) -> dict[str, np.ndarray]:
    """A conv bias b (BatchNorm folded into the conv, as in TFLite) as an exactly-equivalent BatchNorm:
    weight 1, bias b, mean 0, var 1 − eps, so (x − 0)/√(1 − eps + eps)·1 + b = x + b."""
    n = bias.shape[0]
    return batchnorm(prefix, np.ones(n), bias, np.zeros(n), np.full(n, 1.0 - eps))


def drop_background(
    weight: np.ndarray, bias: np.ndarray, num_classes: int = 1000
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """TF-slim's 1001-way classifier has class 0 = background; keep the 1000 ImageNet rows.

    Returns (weight [1000, C], bias [1000], the mapping recorded in the metadata)."""
    if weight.shape[0] != num_classes + 1:
        raise ValueError(f"classifier has {weight.shape[0]} outputs, expected {num_classes + 1} (with background)")
    mapping = {
        "original_classes": num_classes + 1,
        "dropped_rows": [0],
        "dropped_meaning": "background",
        "rule": "suite class i = original class i + 1",
    }
    return weight[1:], bias[1:], mapping
