from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from mnet.backbone import mobilenet_v1

from ..base import Task, register_task
from .train_config import CONFIG_SCHEMA


@register_task
class ClassificationTask(Task):
    """1000-way ImageNet classification; params and Mult-Adds include the FC layer (Tables 6, 7)."""

    name = "classification"
    primary_metric = "top1"
    weights_tasks = ("classification",)
    description = "ImageNet-1k classification (top-1 / top-5)"
    config_schema = CONFIG_SCHEMA

    def build_model(self, *, alpha: float, resolution: int, num_classes: int = 1000, **kwargs) -> nn.Module:
        return mobilenet_v1(alpha=alpha, resolution=resolution, num_classes=num_classes, **kwargs)

    def evaluate(
        self,
        model: nn.Module,
        data: str | Path,
        *,
        split: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        progress: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Top-1 / top-5 (%) on ``data`` (``val/<wnid>/*.JPEG`` or ImageFolder); ``preprocess=`` the
        weights entry's input recipe (default: RGB in [-1, 1] at the model's resolution)."""
        from .evaluate import evaluate_classification

        return evaluate_classification(
            model, data, split=split, batch_size=batch_size, num_workers=num_workers, progress=progress, **kwargs
        )

    def train_parts(self, cfg):
        """Fine-tune on ImageFolder / ImageNet-layout data; the head is re-initialised when the class
        count differs from the pretrained weights'."""
        from .finetune import classification_train_parts

        return classification_train_parts(self, cfg)
