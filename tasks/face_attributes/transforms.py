"""Face crops → model inputs. Aligned CelebA faces are 178×218 with the face centred: the central
square is kept (as for any face crop), then resized to ρ × ρ. Training adds a mild random resized crop,
a horizontal flip and colour jitter (faces are already aligned: heavy crops would cut attributes away)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torchvision.transforms import v2 as T

from ..classification.augment import TF_MEAN, TF_STD, _to_tensor


def center_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def face_eval_transform(
    resolution: int, *, mean: Sequence[float] = TF_MEAN, std: Sequence[float] = TF_STD
) -> Callable[[Image.Image], torch.Tensor]:
    return T.Compose([center_square, T.Resize((resolution, resolution), antialias=True), *_to_tensor(mean, std)])


def face_train_transform(
    resolution: int, *, scale: Sequence[float] = (0.7, 1.0), hflip: float = 0.5, color_jitter: float = 0.2
) -> Callable[[Image.Image], torch.Tensor]:
    ops: list[Callable] = [
        center_square,
        T.RandomResizedCrop(resolution, scale=tuple(scale), ratio=(0.9, 1.1), antialias=True),
    ]
    if hflip:
        ops.append(T.RandomHorizontalFlip(hflip))
    if color_jitter:
        ops.append(T.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter))
    return T.Compose(ops + _to_tensor(TF_MEAN, TF_STD))
