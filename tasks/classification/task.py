from __future__ import annotations

from torch import nn

from backbone import mobilenet_v1

from ..base import Task, register_task


@register_task
class ClassificationTask(Task):
    """1000-way ImageNet classification; params and Mult-Adds include the FC layer (Tables 6, 7)."""

    name = "classification"
    description = "ImageNet-1k classification (top-1 / top-5)"

    def build_model(self, *, alpha: float, resolution: int, num_classes: int = 1000, **kwargs) -> nn.Module:
        return mobilenet_v1(alpha=alpha, resolution=resolution, num_classes=num_classes, **kwargs)
