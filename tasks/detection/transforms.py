"""Detection transforms on numpy (image, boxes xyxy pixels, labels): SSD-style bbox-aware augmentation
with albumentations (photometric distortion, zoom-out, IoU-constrained random crop, horizontal flip;
Liu et al. 2016, Sec. 2.2 "Data augmentation"), then a plain resize of the whole image to the model's
input and normalisation to a (3, H, W) float tensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.augmentations.crops.transforms import BaseCrop
from PIL import Image

Norm = Union[float, Sequence[float]]


def to_tensor(image: np.ndarray, mean: Norm, std: Norm) -> torch.Tensor:
    """uint8 (H, W, 3) → float (3, H, W), ``(x/255 − mean) / std`` (scalars or one value per channel)."""
    x = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255.0)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
    return x.sub_(mean_t).div_(std_t)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize the whole image to (H, W) with PIL bilinear (the reference outputs' resize)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


class EvalTransform:
    """Plain resize to the model's input + normalisation; boxes scaled with the image."""

    def __init__(self, size: int | tuple[int, int], mean: Norm = 0.5, std: Norm = 0.5) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.mean, self.std = mean, std

    def __call__(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray):
        h, w = image.shape[:2]
        sy, sx = self.size[0] / h, self.size[1] / w
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * np.array([sx, sy, sx, sy], dtype=np.float32)
        return to_tensor(resize_image(image, self.size), self.mean, self.std), boxes, labels


class MinIoURandomCrop(BaseCrop):
    """SSD's crop: a patch of 0.3–1 of each side (aspect 1/2–2) whose IoU with some object is at least a
    threshold drawn from ``min_ious`` (None = keep the whole image); boxes whose centre leaves are dropped
    by the pipeline's ``min_visibility``."""

    def __init__(
        self,
        min_ious: Sequence[float | None] = (None, 0.1, 0.3, 0.5, 0.7, 0.9),
        min_scale: float = 0.3,
        max_trials: int = 50,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.min_ious = tuple(min_ious)
        self.min_scale = min_scale
        self.max_trials = max_trials

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        h, w = params["shape"][:2]
        whole = {"crop_coords": (0, 0, w, h)}
        bboxes = np.asarray(data.get("bboxes", np.zeros((0, 4))))[:, :4]  # normalised xyxy
        min_iou = self.py_random.choice(self.min_ious)
        if min_iou is None or len(bboxes) == 0:
            return whole
        boxes = bboxes * np.array([w, h, w, h])
        for _ in range(self.max_trials):
            cw = self.py_random.uniform(self.min_scale, 1.0) * w
            ch = self.py_random.uniform(self.min_scale, 1.0) * h
            if not 0.5 <= ch / cw <= 2.0:
                continue
            x0, y0 = self.py_random.uniform(0, w - cw), self.py_random.uniform(0, h - ch)
            ix = np.clip(np.minimum(boxes[:, 2], x0 + cw) - np.maximum(boxes[:, 0], x0), 0, None)
            iy = np.clip(np.minimum(boxes[:, 3], y0 + ch) - np.maximum(boxes[:, 1], y0), 0, None)
            inter = ix * iy
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            iou = inter / (area + cw * ch - inter)
            if iou.max() >= min_iou:
                return {"crop_coords": (int(x0), int(y0), int(x0 + cw), int(y0 + ch))}
        return whole


class TrainTransform:
    """SSD augmentation + resize + normalise. ``fill`` is the zoom-out canvas colour (the mean)."""

    def __init__(
        self,
        size: int | tuple[int, int],
        mean: Norm = 0.5,
        std: Norm = 0.5,
        zoom_out: tuple[float, float] = (0.25, 1.0),
    ) -> None:
        self.eval = EvalTransform(size, mean, std)
        h, w = self.eval.size
        fill = int(round(float(np.mean(mean)) * 255))
        self.pipeline = A.Compose(
            [
                A.ColorJitter(brightness=0.125, contrast=0.5, saturation=0.5, hue=0.05, p=0.5),
                A.Affine(
                    scale=zoom_out,
                    keep_ratio=True,
                    translate_percent=(-0.25, 0.25),
                    fill=fill,
                    border_mode=cv2.BORDER_CONSTANT,
                    p=0.5,
                ),
                MinIoURandomCrop(),
                A.HorizontalFlip(p=0.5),
                A.Resize(h, w, interpolation=cv2.INTER_LINEAR),
            ],
            bbox_params=A.BboxParams(
                format="pascal_voc", label_fields=["labels"], min_visibility=0.3, min_area=1.0, clip=True
            ),
        )

    def __call__(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray):
        out = self.pipeline(
            image=image,
            bboxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            labels=np.asarray(labels, dtype=np.int64),
        )
        boxes = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(out["labels"], dtype=np.int64).reshape(-1)
        return to_tensor(out["image"], self.eval.mean, self.eval.std), boxes, labels
