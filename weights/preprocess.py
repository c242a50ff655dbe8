"""Input preprocessing recorded with each checkpoint: geometry, normalisation, colour order."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

_RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


def central_crop_box(width: int, height: int, fraction: float) -> tuple[int, int, int, int]:
    """TF's ``tf.image.central_crop`` box: start = int((size − size·fraction) / 2), size − 2·start."""
    top = int((height - height * fraction) / 2)
    left = int((width - width * fraction) / 2)
    return left, top, width - left, height - top


def tf_legacy_resize_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """TF1 ``tf.image.resize_bilinear(align_corners=False)`` (no half-pixel centres, no antialiasing),
    which TF-slim's ``preprocess_for_eval`` uses: source coordinate = destination · (in / out)."""
    h, w = x.shape[:2]
    ys, xs = np.arange(height) * (h / height), np.arange(width) * (w / width)
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    dy = (ys - y0).astype(np.float32).reshape(-1, *([1] * (x.ndim - 1)))
    dx = (xs - x0).astype(np.float32).reshape(1, -1, *([1] * (x.ndim - 2)))
    # separable (rows, then columns) in float32: ~50× faster than 2-D gathers, same values to ~1e-5
    top = x[y0].astype(np.float32)
    rows = top + (x[y1].astype(np.float32) - top) * dy
    left = rows[:, x0]
    return left + (rows[:, x1] - left) * dx


@dataclass(frozen=True)
class Preprocess:
    """How the original model expects its input (recorded with the weights; used by eval and the app).

    Pixels (0..255) become ``(x − mean) / std`` per channel, in ``color_order``. Geometry:
    ``crop_fraction`` < 1 first keeps that central fraction of the image (TF's
    ``tf.image.central_crop``, used by TF-slim's eval with 0.875), then the image is resized to
    ``resolution`` × ``resolution`` with ``interpolation`` (aspect ratio not kept, as TF does):
    PIL's ``bilinear``/``bicubic``/``nearest``, or ``tf_legacy_bilinear`` (TF-slim's own eval resize).
    """

    resolution: int
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    color_order: Literal["RGB", "BGR"] = "RGB"
    crop_fraction: float = 1.0
    interpolation: Literal["bilinear", "bicubic", "nearest", "tf_legacy_bilinear"] = "bilinear"

    def __post_init__(self) -> None:
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")
        if self.interpolation not in (*_RESAMPLE, "tf_legacy_bilinear"):
            raise ValueError(f"unknown interpolation {self.interpolation!r}")
        if self.color_order not in ("RGB", "BGR"):
            raise ValueError(f"color_order must be 'RGB' or 'BGR', got {self.color_order!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocess":
        d = dict(d)
        for k in ("mean", "std"):
            if k in d:
                d[k] = tuple(float(v) for v in d[k])
        return cls(**d)

    def geometry(self, img: Image.Image) -> np.ndarray:
        """Crop (when ``crop_fraction`` < 1) and resize an RGB PIL image to ``resolution`` × ``resolution``;
        returns pixels (H, W, 3) in 0..255."""
        if self.crop_fraction < 1.0:
            img = img.crop(central_crop_box(img.width, img.height, self.crop_fraction))
        size = self.resolution
        if self.interpolation == "tf_legacy_bilinear":
            return tf_legacy_resize_bilinear(np.asarray(img), size, size)
        return np.asarray(img.resize((size, size), _RESAMPLE[self.interpolation]))

    def normalize(self, pixels: np.ndarray) -> torch.Tensor:
        """RGB pixels (H, W, 3) in 0..255 → float tensor (3, H, W) in the model's colour order and scale."""
        x = pixels.astype(np.float32)
        if self.color_order == "BGR":
            x = x[..., ::-1]
            mean, std = self.mean[::-1], self.std[::-1]
        else:
            mean, std = self.mean, self.std
        x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))

    def __call__(self, img: Image.Image) -> torch.Tensor:
        """An RGB PIL image → the model's input tensor (3, resolution, resolution)."""
        return self.normalize(self.geometry(img.convert("RGB") if img.mode != "RGB" else img))


#: TF-slim's inputs: RGB scaled to [-1, 1]
TF_INCEPTION = dict(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5))
#: TFLite uint8 MobileNet input quantization: scale 1/128, zero point 128
TFLITE_UINT8 = dict(mean=(128.0, 128.0, 128.0), std=(128.0, 128.0, 128.0))
