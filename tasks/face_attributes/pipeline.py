"""Faces in the wild: detect → crop each face (square, with margin) → age/gender and attributes per face.

Detectors are a registry: ``ssd`` (the face-api.js SSD-MobileNetV1, the primary one) and ``retinaface``
(RetinaFace MobileNet-0.25, which also gives 5 landmarks). Age and gender come from the imported
faceres-deep model; CelebA's 40 attributes from the suite's own entry (``ATTRIBUTE_WEIGHTS``) or any
suite face-attribute weights (``attributes=None`` leaves them out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .celeba import crop_box
from .model import decode_age_gender
from .pretrained import ENTRY as ATTRIBUTE_WEIGHTS

AGE_GENDER_WEIGHTS = "faceres_mobilenet_v1_1.0_224.age_gender"
#: margin of the attribute crops: CelebA's training input (the aligned image's central square) is the SSD's
#: face box grown by ~0.34 of its size per side (median over the CelebA val/test faces); age/gender keeps 0.1
ATTRIBUTE_MARGIN = 0.3


@dataclass
class DetectedFaces:
    boxes: torch.Tensor  # (K, 4) xyxy pixels
    scores: torch.Tensor  # (K,)
    landmarks: torch.Tensor | None = None  # (K, 5, 2) pixels


def _ssd(image: np.ndarray, score_threshold: float | None) -> DetectedFaces:
    from ..detection.faces import detect_faces

    boxes, scores = detect_faces(image, min_score=score_threshold)
    return DetectedFaces(boxes, scores)


def _retinaface(image: np.ndarray, score_threshold: float | None) -> DetectedFaces:
    from .retinaface import detect_faces_retina

    kw = {} if score_threshold is None else {"score_threshold": score_threshold}
    f = detect_faces_retina(image, **kw)
    return DetectedFaces(f.boxes, f.scores, f.landmarks)


#: detector name → (RGB uint8 (H, W, 3), score threshold or None for the detector's default) → faces
FACE_DETECTORS: dict[str, Callable[[np.ndarray, float | None], DetectedFaces]] = {
    "ssd": _ssd,
    "retinaface": _retinaface,
}


@dataclass
class Face:
    box: list[float]  # xyxy pixels
    score: float
    age: float
    gender: str  # "male" | "female"
    gender_score: float  # confidence in ``gender``
    attributes: list[tuple[str, float]] = field(default_factory=list)  # top attributes, most probable first
    landmarks: list[list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 4),
            "age": round(self.age, 1),
            "gender": self.gender,
            "gender_score": round(self.gender_score, 4),
            "attributes": [{"name": n, "prob": round(p, 4)} for n, p in self.attributes],
            **({"landmarks": self.landmarks} if self.landmarks is not None else {}),
        }


def to_input(crops: list[Image.Image], preprocess: Any) -> torch.Tensor:
    """Face crops → (N, 3, ρ, ρ) normalised as the weights' :class:`~weights.Preprocess` says (RGB or BGR)."""
    res = int(preprocess.resolution)
    arr = np.stack([np.asarray(c.convert("RGB").resize((res, res), Image.BILINEAR), dtype=np.float32) for c in crops])
    if preprocess.color_order == "BGR":
        arr = arr[..., ::-1]
    arr = (arr - np.asarray(preprocess.mean, np.float32)) / np.asarray(preprocess.std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


class FacePipeline:
    """``pipeline(image) -> list[Face]`` for an RGB PIL image or uint8 array; no faces → an empty list."""

    def __init__(
        self,
        *,
        detector: str = "ssd",
        age_gender: str | Path = AGE_GENDER_WEIGHTS,
        attributes: str | Path | None = ATTRIBUTE_WEIGHTS,
        margin: float = 0.1,
        attribute_margin: float = ATTRIBUTE_MARGIN,
        top_k: int = 5,
        score_threshold: float | None = None,
        runtime: str = "torch",
    ) -> None:
        """``runtime`` ("torch", "onnxruntime", "auto") runs the age/gender and attribute networks
        (``tasks.runtime.task_runtime``); the face detector runs in PyTorch."""
        from mnet.tasks.runtime import task_runtime
        from mnet.weights import build_pretrained

        from ..base import get_task  # (importing the tasks package registered every task)

        if detector not in FACE_DETECTORS:
            raise ValueError(f"unknown face detector {detector!r}; known: {', '.join(FACE_DETECTORS)}")
        self.detect = FACE_DETECTORS[detector]
        task = get_task("face_attributes")
        model, w = build_pretrained(age_gender)
        self.age_gender_pre = w.preprocess
        self.age_gender = task_runtime(task, model, runtime, resolution=w.preprocess.resolution)
        self.attributes = self.attr_names = self.attr_pre = None
        if attributes is not None:
            from mnet.weights import Preprocess

            from .task import load_face_model

            model, meta = load_face_model(attributes)
            if not meta.get("labels") or meta["model_kwargs"].get("head", "attributes") != "attributes":
                raise ValueError(f"{attributes}: not face-attribute weights (no attribute names recorded)")
            self.attr_names, self.attr_pre = meta["labels"], Preprocess.from_dict(meta["preprocess"])
            self.attributes = task_runtime(task, model, runtime, resolution=self.attr_pre.resolution)
        self.margin, self.attribute_margin = margin, attribute_margin
        self.top_k, self.score_threshold = top_k, score_threshold

    @torch.inference_mode()
    def __call__(self, image: Image.Image | np.ndarray) -> list[Face]:
        arr = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {arr.dtype} {arr.shape}")
        faces = self.detect(arr, self.score_threshold)
        if len(faces.boxes) == 0:
            return []
        pil = Image.fromarray(arr)
        xywh = [(x1, y1, x2 - x1, y2 - y1) for x1, y1, x2, y2 in faces.boxes.tolist()]
        crops = [crop_box(pil, b, self.margin) for b in xywh]
        ages, p_male = decode_age_gender(self.age_gender(to_input(crops, self.age_gender_pre)))
        attr_probs = None
        if self.attributes is not None:
            attr_crops = [crop_box(pil, b, self.attribute_margin) for b in xywh]
            attr_probs = torch.sigmoid(self.attributes(to_input(attr_crops, self.attr_pre)))
        out = []
        for i, box in enumerate(faces.boxes.tolist()):
            male = float(p_male[i])
            attrs: list[tuple[str, float]] = []
            if attr_probs is not None:
                top = attr_probs[i].argsort(descending=True)[: self.top_k].tolist()
                attrs = [(self.attr_names[j], float(attr_probs[i, j])) for j in top]
            lm = faces.landmarks[i].tolist() if faces.landmarks is not None else None
            out.append(
                Face(
                    box,
                    float(faces.scores[i]),
                    float(ages[i]),
                    "male" if male > 0.5 else "female",
                    max(male, 1 - male),
                    attrs,
                    lm,
                )
            )
        return out
