"""Classification training augmentation at resolution ρ: random resized crop, horizontal flip, colour
jitter (torchvision v2; randomness from the torch RNG, which the engine seeds per sample). Pixels are
normalised as ``(x − mean) / std`` on the 0..255 scale; the defaults give TF-slim's [-1, 1] inputs.
Evaluation uses the weights' own input recipe, :class:`weights.Preprocess`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torchvision.transforms import v2 as T

TF_MEAN = (127.5, 127.5, 127.5)
TF_STD = (127.5, 127.5, 127.5)


def _to_tensor(mean: Sequence[float], std: Sequence[float]) -> list[Callable]:
    return [T.PILToTensor(), T.ToDtype(torch.float32, scale=False), T.Normalize(list(mean), list(std))]


def train_transform(
    resolution: int,
    *,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    hflip: float = 0.5,
    color_jitter: float = 0.4,
    mean: Sequence[float] = TF_MEAN,
    std: Sequence[float] = TF_STD,
) -> Callable[[Image.Image], torch.Tensor]:
    """PIL RGB image → augmented (3, ρ, ρ) float tensor."""
    ops: list[Callable] = [T.RandomResizedCrop(resolution, scale=tuple(scale), ratio=tuple(ratio), antialias=True)]
    if hflip:
        ops.append(T.RandomHorizontalFlip(hflip))
    if color_jitter:
        ops.append(T.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter))
    return T.Compose(ops + _to_tensor(mean, std))
