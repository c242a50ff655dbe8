"""Detect objects in whole images: the one inference path (resize → normalise → SSD → decode + NMS →
boxes in the original image's pixels). Used by evaluation, the CLI, the demo and ``detect_faces``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from .model import SSD
from .transforms import EvalTransform


def as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A PIL image or an (H, W, 3) uint8 RGB array → (H, W, 3) uint8 array; ValueError otherwise."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {arr.dtype} {arr.shape}")
    return arr


def eval_transform(model: SSD, preprocess: Any = None) -> EvalTransform:
    """Resize to the model's input and normalise with the weights' recipe (``weights.Preprocess``, pixel
    units) when given, else the model config's ``mean``/``std`` (units of [0, 1])."""
    cfg = model.config
    if preprocess is not None:
        return EvalTransform(
            preprocess.resolution, tuple(m / 255 for m in preprocess.mean), tuple(s / 255 for s in preprocess.std)
        )
    return EvalTransform(cfg.resolution, cfg.mean, cfg.std)


@torch.inference_mode()
def detect(model: SSD, images: Sequence[Image.Image | np.ndarray]) -> list[dict[str, torch.Tensor]]:
    """Per image: ``boxes`` (K, 4) xyxy in the image's own pixels, ``scores``, ``labels`` (1-based class
    index into the model's classes; ``model.config.category_ids`` maps them to dataset ids)."""
    tf = eval_transform(model)
    arrays = [as_rgb_array(im) for im in images]
    if not arrays:
        return []
    batch = torch.stack([tf(a, np.zeros((0, 4)), np.zeros(0))[0] for a in arrays])
    device = next(model.parameters()).device
    model.eval()
    return model(batch.to(device), image_sizes=[a.shape[:2] for a in arrays])
