"""What a task hands the engine: the engine owns the loop, the task owns model, data, loss and metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset


@dataclass
class TrainParts:
    """Everything task-specific about a training run.

    The training set yields ``(inputs, targets)``; the engine moves both to the device (nested lists
    and dicts too), calls ``loss_fn(model(inputs), targets)`` and backpropagates. A sample may be
    ``None`` (a bad image the dataset was told to skip): the engine drops and counts it.
    """

    model: nn.Module
    train_set: Dataset
    loss_fn: Callable[[Any, Any], torch.Tensor]
    #: metrics on held-out data, ``evaluate(model) -> {name: value}``; called on rank 0 only
    evaluate: Callable[[nn.Module], dict[str, Any]] | None = None
    #: key of ``evaluate``'s result that picks the best checkpoint (higher is better)
    metric: str | None = None
    #: the pretrained part: gets ``optim.backbone_lr_mult``, ``train.freeze_backbone``, ``train.freeze_bn``
    backbone: nn.Module | None = None
    #: collates the good samples of a batch (default: ``torch.utils.data.default_collate``)
    collate_fn: Callable | None = None
    #: stored with exported weights so a loader can rebuild the model (α, ρ, classes, ...)
    export_metadata: dict[str, Any] = field(default_factory=dict)
