"""Fine-tuning classification models: pretrained backbones with a head for any class count, and the
engine's :class:`~tasks.engine.TrainParts` for ImageFolder / ImageNet-layout data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnet.backbone import mobilenet_v1

from ..pretrained import model_predictor

HEAD = ("head.fc.weight", "head.fc.bias")


def pretrained_classifier(
    weights: str | Path | Any,
    *,
    num_classes: int,
    resolution: int | None = None,
    alpha: float | None = None,
    dropout: float = 0.0,
    source: str | Path | None = None,
) -> tuple[nn.Module, Any, tuple[torch.Tensor, torch.Tensor] | None]:
    """(model, :class:`weights.LoadedWeights`, the pretrained classifier (weight, bias) or None).

    The backbone always loads; the head loads when its class count matches ``num_classes`` and is
    otherwise left freshly initialised (the class count changed). ``weights``: an entry name, a suite
    file, or already loaded :class:`weights.LoadedWeights`."""
    from mnet.weights import LoadedWeights, load_weights

    w = weights if isinstance(weights, LoadedWeights) else load_weights(weights, source=source)
    kwargs = dict(w.model_kwargs)
    if alpha is not None and abs(float(alpha) - float(kwargs.get("alpha", alpha))) > 1e-9:
        raise ValueError(
            f"model.alpha={alpha} but the weights {weights} are for α={kwargs['alpha']}; "
            f"drop model.alpha or pick weights of that width"
        )
    kwargs.update(num_classes=num_classes, dropout=dropout)
    if resolution:
        kwargs["resolution"] = int(resolution)
    model = mobilenet_v1(**kwargs)
    sd = dict(w.state_dict)
    old = (sd["head.fc.weight"], sd["head.fc.bias"]) if HEAD[0] in sd else None
    if old is not None and old[0].shape[0] != num_classes:
        for k in HEAD:
            sd.pop(k)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if k not in HEAD and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(
            f"{w.path}: weights do not fit MobileNetV1 α={kwargs.get('alpha')} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model, w, old


def classification_train_parts(task, cfg: Mapping[str, Any]):
    """ImageFolder / ``train``+``val`` ImageNet-layout training (any class count)."""
    from mnet.weights import Preprocess

    from ..data.batches import SkipBadSamples
    from ..training import TrainParts
    from .augment import train_transform
    from .data import ImageFolderDataset

    m, d, a = cfg["model"], cfg["data"], cfg.get("augment") or {}
    res = int(m["resolution"])
    train_set = ImageFolderDataset(d["root"], d.get("train_split", "train"))
    n = len(train_set.classes.ids)
    if m.get("weights"):
        model, w, _ = pretrained_classifier(
            m["weights"],
            num_classes=n,
            resolution=res,
            alpha=m.get("alpha"),
            dropout=m.get("dropout", 0.0),
            source=m.get("weights_source"),
        )
        pre, kwargs = replace(w.preprocess, resolution=res), {**w.model_kwargs, "num_classes": n, "resolution": res}
    else:
        kwargs = {"alpha": float(m["alpha"] or 1.0), "resolution": res, "num_classes": n}
        model, pre = task.build_model(**kwargs, dropout=m.get("dropout", 0.0)), Preprocess(res, crop_fraction=0.875)
    train_set.transform = train_transform(
        res,
        scale=a.get("scale", (0.08, 1.0)),
        hflip=a.get("hflip", 0.5),
        color_jitter=a.get("color_jitter", 0.4),
        mean=pre.mean,
        std=pre.std,
    )
    val_split = d.get("val_split", "val")
    evaluate = None
    if val_split:

        def evaluate(model: nn.Module) -> dict[str, Any]:
            predictor = model_predictor(task, model, pre, labels=list(train_set.classes.names))
            return task.evaluate(predictor, d["root"], split=val_split, batch_size=int(d["batch_size"]), progress=False)

    loss = nn.CrossEntropyLoss(label_smoothing=float((cfg.get("loss") or {}).get("label_smoothing", 0.0)))
    export = {
        "arch": "mobilenet_v1",
        "model_kwargs": kwargs,
        "labels": list(train_set.classes.names),
        "preprocess": pre.to_dict(),
        "init_from": m.get("weights"),
    }
    return TrainParts(
        model=model,
        train_set=SkipBadSamples(train_set, d.get("on_bad_image", "error")),
        loss_fn=loss,
        evaluate=evaluate,
        metric="top1",
        backbone=model.layers,
        export_metadata=export,
    )
