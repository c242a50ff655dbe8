"""Classification evaluation: top-1 / top-5 over an ImageNet-layout (or ImageFolder) split."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..checks import check_finite, model_name
from .data import ImageFolderDataset
from .metrics import TopK


def default_preprocess(model: nn.Module) -> Any:
    """The suite's default input recipe at the model's resolution (TF-slim style: RGB in [-1, 1])."""
    from mnet.weights.preprocess import Preprocess

    return Preprocess(int(getattr(getattr(model, "config", None), "resolution", 224)))


@torch.no_grad()
def evaluate_classification(
    model: nn.Module,
    data: str | Path,
    *,
    split: str | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = True,
    preprocess: Any = None,
    limit: int | None = None,
    weights_meta: Mapping[str, Any] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Top-1/top-5 (%) of ``model`` on ``data`` using ``preprocess`` (a :class:`weights.Preprocess`;
    the weights entry's own, or the default recipe). ``limit`` evaluates only the first N images. Non-finite
    logits raise a :class:`~mnet.tasks.checks.NonFiniteOutputError` naming the weights (``weights_meta``)."""
    from tqdm import tqdm

    preprocess = preprocess or default_preprocess(model)
    ds = ImageFolderDataset(data, split, transform=preprocess)
    if limit is not None:
        ds.samples = ds.samples[:limit]
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None and len(ds.classes.ids) != num_classes:
        raise ValueError(
            f"{ds.split_dir}: {len(ds.classes.ids)} classes ({ds.classes.origin}) but the model outputs {num_classes}"
        )
    loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    model.eval()
    meter, name = TopK((1, 5)), model_name(model, weights_meta)
    for images, labels in tqdm(loader, desc="eval", unit="batch", disable=not progress, file=sys.stderr):
        logits = model(images)
        check_finite(logits, name, "logits")
        meter.update(logits, labels)
    return {
        **meter.result(),
        "n": meter.n,
        "classes_present": ds.num_classes_present,
        "class_order": ds.classes.origin,
        "preprocess": preprocess.to_dict(),
    }
