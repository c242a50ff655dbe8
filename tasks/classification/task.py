from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from mnet.backbone import mobilenet_v1

from ..base import Task, register_task
from ..inference import Predictor
from .train_config import CONFIG_SCHEMA


@register_task
class ClassificationTask(Task):
    """1000-way ImageNet classification; params and Mult-Adds include the FC layer (Tables 6, 7)."""

    name = "classification"
    primary_metric = "top1"
    weights_tasks = ("classification",)
    config_schema = CONFIG_SCHEMA

    def build_model(self, *, alpha: float, resolution: int, num_classes: int = 1000, **kwargs) -> nn.Module:
        return mobilenet_v1(alpha=alpha, resolution=resolution, num_classes=num_classes, **kwargs)

    def evaluate(self, predictor: Predictor, data: str | Path, **kwargs: Any) -> dict[str, Any]:
        """Top-1 / top-5 (%) on ``data`` (``val/<wnid>/*.JPEG`` or ImageFolder) with the predictor's
        own input recipe (see :func:`~mnet.tasks.classification.evaluate.evaluate_classification`)."""
        from .evaluate import evaluate_classification

        return evaluate_classification(predictor, data, **kwargs)

    def train_parts(self, cfg):
        """Fine-tune on ImageFolder / ImageNet-layout data; the head is re-initialised when the class
        count differs from the pretrained weights'."""
        from .finetune import classification_train_parts

        return classification_train_parts(self, cfg)
