"""Per-task runners for the demo: load a model once, then turn frames into :class:`Prediction` s.

A runner splits inference into ``prepare`` (resize once, normalise), ``features`` (the backbone) and
``head`` (task head + postprocessing). Runners whose ``backbone_key`` is equal share one backbone
pass per frame (classification and the zero-shot dogs head both read the ImageNet backbone).
"""

from __future__ import annotations

import functools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable

import cv2
import numpy as np
import torch
from torch import nn

from mnet.tasks.results import Detection, Label, Prediction


def prepare_image(frame: np.ndarray, preprocess) -> torch.Tensor:
    """RGB uint8 (H, W, 3) → normalised (1, 3, ρ, ρ) tensor with one resize (cv2, area/linear)."""
    h, w = frame.shape[:2]
    if preprocess.crop_fraction < 1.0:
        ch, cw = int(round(h * preprocess.crop_fraction)), int(round(w * preprocess.crop_fraction))
        top, left = (h - ch) // 2, (w - cw) // 2
        frame = frame[top : top + ch, left : left + cw]
    r = preprocess.resolution
    interp = cv2.INTER_AREA if min(frame.shape[:2]) > 2 * r else cv2.INTER_LINEAR
    img = cv2.resize(frame, (r, r), interpolation=interp).astype(np.float32)
    if preprocess.color_order == "BGR":
        img = img[..., ::-1]
    img = (img - np.asarray(preprocess.mean, np.float32)) / np.asarray(preprocess.std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


def topk_labels(logits: torch.Tensor, names: list[str], k: int = 5) -> list[Label]:
    probs = torch.softmax(logits.float(), dim=-1)
    scores, idx = probs.topk(min(k, probs.numel()))
    return [Label(names[i], float(s), int(i)) for s, i in zip(scores.tolist(), idx.tolist())]


class PreLogits(nn.Module):
    """Backbone + global pool: the part of a classifier that its heads share (exported whole)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


class Runner(ABC):
    """One task with one set of weights, loaded once and reused for every frame.

    ``runtime`` ("auto", "torch", "onnxruntime") runs the network part (see ``tasks.runtime``)."""

    task: str = ""

    def __init__(self, weights: str, source: str | None = None, runtime: str = "auto") -> None:
        self.weights = weights
        self.source = source
        self.runtime = runtime

    @property
    def backbone_key(self) -> Hashable:
        return (self.task, self.weights)

    @abstractmethod
    def prepare(self, frame: np.ndarray) -> torch.Tensor: ...

    @abstractmethod
    def features(self, x: torch.Tensor) -> object: ...

    @abstractmethod
    def head(self, feats: object, frame_shape: tuple[int, int], threshold: float) -> Prediction: ...

    def __call__(self, frame: np.ndarray, threshold: float = 0.5) -> Prediction:
        t0 = time.perf_counter()
        with torch.inference_mode():
            pred = self.head(self.features(self.prepare(frame)), frame.shape[:2], threshold)
        pred.model_ms = (time.perf_counter() - t0) * 1e3
        return pred


@functools.lru_cache(maxsize=8)
def imagenet_classifier(weights: str, source: str | None, runtime: str):
    """(model, preprocess, labels, pre-logits runtime) for an ImageNet weights entry, loaded and exported
    once however many runners (classification, the dogs rows) read it."""
    from mnet.tasks.runtime import make_runtime
    from mnet.weights import build_pretrained

    model, loaded = build_pretrained(weights, source=source)
    labels = loaded.labels or [str(i) for i in range(model.num_classes)]
    backbone = make_runtime(PreLogits(model), runtime, resolution=loaded.preprocess.resolution)
    return model, loaded.preprocess, labels, backbone


class ClassificationRunner(Runner):
    """ImageNet top-5 from a classification weights entry."""

    task = "classification"

    def __init__(self, weights: str, source: str | None = None, runtime: str = "auto") -> None:
        super().__init__(weights, source, runtime)
        self.model, self.preprocess, self.labels, self.backbone = imagenet_classifier(weights, source, runtime)

    @property
    def backbone_key(self) -> Hashable:
        return ("imagenet_backbone", self.weights)

    def prepare(self, frame: np.ndarray) -> torch.Tensor:
        return prepare_image(frame, self.preprocess)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def head(self, feats: torch.Tensor, frame_shape: tuple[int, int], threshold: float) -> Prediction:
        logits = self.model.head.fc(feats)[0]
        return Prediction(self.task, self.weights, labels=topk_labels(logits, self.labels))


class DogsRunner(ClassificationRunner):
    """Stanford Dogs top-5 from the ImageNet classifier's 120 dog rows (zero-shot head), reading the
    same backbone pass as classification."""

    task = "dogs"

    def __init__(self, weights: str, source: str | None = None, runtime: str = "auto") -> None:
        super().__init__(weights, source, runtime)
        from mnet.tasks.dogs.data import breeds

        self.rows = torch.tensor([b.imagenet_index for b in breeds()])
        self.breed_names = [b.name for b in breeds()]

    def head(self, feats: torch.Tensor, frame_shape: tuple[int, int], threshold: float) -> Prediction:
        logits = self.model.head.fc(feats)[0, self.rows]
        return Prediction(
            self.task, f"{self.weights} (zero-shot dog rows)", labels=topk_labels(logits, self.breed_names)
        )


class DetectionRunner(Runner):
    """SSD boxes in the frame's pixels; the score threshold is the demo's slider."""

    task = "detection"

    def __init__(self, weights: str, source: str | None = None, runtime: str = "auto") -> None:
        super().__init__(weights, source, runtime)
        from dataclasses import replace

        from mnet.tasks import get_task
        from mnet.tasks.detection.network import detections
        from mnet.tasks.detection.predict import eval_transform
        from mnet.tasks.runtime import task_runtime
        from mnet.weights import build_pretrained

        self.model, loaded = build_pretrained(weights, source=source)
        self.transform = eval_transform(self.model)
        self.detector = task_runtime(
            get_task("detection"), self.model, runtime, resolution=self.model.config.resolution
        )
        self.names = loaded.labels or [str(i + 1) for i in range(self.model.config.num_classes)]
        self._detections, self._replace = detections, replace
        self._no_boxes = (np.zeros((0, 4), np.float32), np.zeros(0, np.int64))

    def prepare(self, frame: np.ndarray) -> torch.Tensor:
        return self.transform(frame, *self._no_boxes)[0][None]

    def features(self, x: torch.Tensor):
        return self.detector.network(x)  # boxes + scores of every anchor (tasks.detection.network)

    def head(self, feats, frame_shape: tuple[int, int], threshold: float) -> Prediction:
        cfg = self._replace(self.detector.config.postprocess, score_threshold=threshold)
        det = self._detections(feats, cfg, [tuple(frame_shape)])[0]
        dets = [
            Detection(tuple(float(v) for v in box), Label(self.names[int(lab) - 1], float(score), int(lab)))
            for box, score, lab in zip(det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist())
        ]
        return Prediction(self.task, self.weights, detections=dets)


#: task name → runner class; tasks register theirs here as they land
RUNNERS: dict[str, Callable[..., Runner]] = {
    "classification": ClassificationRunner,
    "dogs": DogsRunner,
    "detection": DetectionRunner,
}

from .face_runner import FaceAttributesRunner  # noqa: E402  (registers below; imports Runner from here)

RUNNERS["face_attributes"] = FaceAttributesRunner
