"""Classification transforms at resolution ρ: training augmentation and evaluation preprocessing.

Training: random resized crop, horizontal flip, colour jitter (torchvision v2; randomness from the
torch RNG, which the engine seeds per sample). Evaluation: TF-slim's protocol, a central crop of
``crop_fraction`` of each side, then a resize to ρ × ρ. Pixels are normalised as ``(x − mean) / std``
on the 0..255 scale; the defaults give TF-slim's [-1, 1] inputs.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from PIL import Image
from torchvision.transforms import v2 as T

TF_MEAN = (127.5, 127.5, 127.5)
TF_STD = (127.5, 127.5, 127.5)


def _to_tensor(mean: Sequence[float], std: Sequence[float]) -> list[Callable]:
    return [T.PILToTensor(), T.ToDtype(torch.float32, scale=False), T.Normalize(list(mean), list(std))]


def train_transform(resolution: int, *, scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3),
                    hflip: float = 0.5, color_jitter: float = 0.4, mean: Sequence[float] = TF_MEAN,
                    std: Sequence[float] = TF_STD) -> Callable[[Image.Image], torch.Tensor]:
    """PIL RGB image → augmented (3, ρ, ρ) float tensor."""
    ops: list[Callable] = [T.RandomResizedCrop(resolution, scale=tuple(scale), ratio=tuple(ratio), antialias=True)]
    if hflip:
        ops.append(T.RandomHorizontalFlip(hflip))
    if color_jitter:
        ops.append(T.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter))
    return T.Compose(ops + _to_tensor(mean, std))


class CentralCropResize:
    """TF's ``central_crop(fraction)`` then a resize to ``resolution`` × ``resolution`` (aspect not kept)."""

    def __init__(self, resolution: int, crop_fraction: float = 0.875) -> None:
        if not 0.0 < crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
        self.resolution, self.crop_fraction = resolution, crop_fraction

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        cw, ch = max(1, round(w * self.crop_fraction)), max(1, round(h * self.crop_fraction))
        left, top = (w - cw) // 2, (h - ch) // 2
        img = img.crop((left, top, left + cw, top + ch))
        return img.resize((self.resolution, self.resolution), Image.BILINEAR)


def eval_transform(resolution: int, *, crop_fraction: float = 0.875, mean: Sequence[float] = TF_MEAN,
                   std: Sequence[float] = TF_STD) -> Callable[[Image.Image], torch.Tensor]:
    return T.Compose([CentralCropResize(resolution, crop_fraction), *_to_tensor(mean, std)])
