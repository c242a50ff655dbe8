"""Classification evaluation: top-1 / top-5 over an image dataset, through the one inference path."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..inference import Predictor
from .data import ImageFolderDataset
from .metrics import TopK


def ranked_accuracy(
    predictor: Predictor,
    dataset: Any,
    *,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "eval",
    collate_fn: Callable[..., Any] | None = None,
) -> tuple[TopK, int]:
    """Top-1/top-5 of ``predictor`` over ``dataset`` (items: preprocessed (3, H, W) input, class index;
    with ``collate_fn`` from :func:`mnet.tasks.data.collate_skip_bad`, unreadable images are skipped and
    counted). Returns the meter and the number of images skipped."""
    import torch
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    n_classes = len(predictor.labels) if predictor.labels else None
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_fn)
    meter, skipped = TopK((1, 5)), 0
    res = predictor.preprocess.resolution
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, file=sys.stderr):
        if collate_fn is not None:
            batch, bad = batch
            skipped += bad
            if batch is None:
                continue
        x, y = batch
        if n_classes is not None and int(y.max()) >= n_classes:
            raise ValueError(f"label {int(y.max())} is outside {predictor.model}'s {n_classes} classes")
        meter.update(predictor.decoded(x.numpy(), [predictor.frame(res, res)] * len(x), top_k=5), y.numpy())
    return meter, skipped


def evaluate_classification(
    predictor: Predictor,
    data: str | Path,
    *,
    split: str | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = True,
    limit: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Top-1/top-5 (%) of ``predictor`` on ``data`` (``val/<wnid>/*.JPEG`` or ImageFolder) with its own
    input recipe. ``limit`` evaluates only the first N images."""
    ds = ImageFolderDataset(data, split, transform=predictor.preprocess.to_array)
    if limit is not None:
        ds.samples = ds.samples[:limit]
    n_classes = len(predictor.labels) if predictor.labels else None
    if n_classes is not None and len(ds.classes.ids) != n_classes:
        raise ValueError(
            f"{ds.split_dir}: {len(ds.classes.ids)} classes ({ds.classes.origin}) but {predictor.model} has {n_classes}"
        )
    meter, _ = ranked_accuracy(predictor, ds, batch_size=batch_size, num_workers=num_workers, progress=progress)
    return {
        **meter.result(),
        "n": meter.n,
        "classes_present": ds.num_classes_present,
        "class_order": ds.classes.origin,
        "preprocess": predictor.preprocess.to_dict(),
    }
