"""Find faces with the face-api.js SSD-MobileNetV1 detector (``ssd_mobilenet_v1_1.0_512.faceapi_faces``)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from .model import SSD
from .predict import as_rgb_array, detect

FACE_WEIGHTS = "ssd_mobilenet_v1_1.0_512.faceapi_faces"


@lru_cache(maxsize=2)
def face_detector(weights: str = FACE_WEIGHTS) -> SSD:
    """The converted face detector (converted and cached on first use), in eval mode."""
    from mnet.weights import build_pretrained

    model, _ = build_pretrained(weights)
    return model


def detect_faces(
    image: Image.Image | np.ndarray, *, model: SSD | None = None, min_score: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Faces in one RGB image → ``boxes`` (K, 4) xyxy in the image's pixels and ``scores`` (K,), best first.

    As face-api.js does, the image is padded to a square (bottom/right) before the 512×512 resize, so
    faces keep their shape; ``min_score`` defaults to the model's threshold (0.5).
    """
    model = model or face_detector()
    arr = as_rgb_array(image)
    h, w = arr.shape[:2]
    side = max(h, w)
    square = np.zeros((side, side, 3), dtype=np.uint8)
    square[:h, :w] = arr
    det = detect(model, [square])[0]
    keep = det["labels"] == 1
    boxes, scores = det["boxes"][keep], det["scores"][keep]
    if min_score is not None:
        boxes, scores = boxes[scores >= min_score], scores[scores >= min_score]
    boxes = (
        torch.stack(
            [boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h), boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], dim=1
        )
        if len(boxes)
        else boxes
    )
    return boxes, scores
