"""Fine-grained Stanford Dogs (paper Sec. 4.3, Table 10): the backbone plus a 120-way classifier.

All 120 breeds are ImageNet-1k classes, so ImageNet pretraining overlaps Stanford Dogs: the ImageNet
classifier's 120 dog rows already form a zero-shot dogs head, and they initialise the fine-tuned one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from backbone import Cost, count_cost, mobilenet_v1

from ..base import Task, register_task
from ..classification.augment import eval_transform, train_transform
from .data import NUM_BREEDS, StanfordDogs, breeds
from .pretrained import dogs_model_from_weights


@register_task
class DogsTask(Task):
    """120-way Stanford Dogs; params exclude the ImageNet classifier (Table 10: 3.3 M at α 1.0)."""

    name = "dogs"
    description = "Stanford Dogs fine-grained recognition, 120 breeds (top-1 / top-5)"

    def build_model(self, *, alpha: float, resolution: int, **kwargs) -> nn.Module:
        kwargs.setdefault("num_classes", NUM_BREEDS)
        return mobilenet_v1(alpha=alpha, resolution=resolution, **kwargs)

    def cost(self, model: nn.Module, resolution: int) -> Cost:
        """Backbone + 120-way FC, as Table 10 counts it."""
        return count_cost(model, resolution)

    def load_model(self, weights: str | Path, *, resolution: int | None = None, head: str = "zero_shot") -> nn.Module:
        """A dogs model from a weights entry/file: a dogs checkpoint as is, an ImageNet classifier with its
        120 dog rows as the head (``head='zero_shot'``) or a fresh head (``'random'``)."""
        return dogs_model_from_weights(weights, resolution=resolution, head=head)[0]

    def evaluate(self, model: nn.Module, data: str | Path, *, split: str | None = None, batch_size: int = 32,
                 num_workers: int = 0, progress: bool = True, on_bad_image: str = "error",
                 crop_fraction: float = 0.875, **kwargs: Any) -> dict[str, Any]:
        from tqdm import tqdm

        from ..engine.data import collate_skip_bad

        res = int(kwargs.get("resolution") or model.config.resolution)
        ds = StanfordDogs(data, split or "test", eval_transform(res, crop_fraction=crop_fraction),
                          on_bad_image=on_bad_image)
        loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers,
                                             collate_fn=collate_skip_bad())
        device = next(model.parameters()).device
        model.eval()
        correct1 = correct5 = n = skipped = 0
        with torch.inference_mode():
            for batch, bad in tqdm(loader, desc=f"eval dogs/{ds.split}", unit="batch", disable=not progress):
                skipped += bad
                if batch is None:
                    continue
                x, y = batch
                top5 = model(x.to(device)).topk(5, dim=1).indices.cpu()
                correct1 += int((top5[:, 0] == y).sum())
                correct5 += int((top5 == y[:, None]).any(1).sum())
                n += len(y)
        skipped += len(ds.skipped) - skipped if on_bad_image == "skip" else 0
        return {"top1": 100.0 * correct1 / max(1, n), "top5": 100.0 * correct5 / max(1, n), "n": n,
                "skipped_images": skipped}

    def train_parts(self, cfg: Mapping[str, Any]):
        from ..engine import TrainParts

        m, d, a = cfg["model"], cfg["data"], cfg.get("augment") or {}
        res = int(m["resolution"])
        if m.get("weights"):
            model, meta = dogs_model_from_weights(m["weights"], resolution=res, head=m.get("head_init", "zero_shot"),
                                                  alpha=m.get("alpha"), dropout=m.get("dropout", 0.0))
        else:
            model = self.build_model(alpha=float(m["alpha"]), resolution=res, dropout=m.get("dropout", 0.0))
            meta = {"model_kwargs": {"alpha": float(m["alpha"]), "resolution": res, "num_classes": NUM_BREEDS}}
        on_bad = d.get("on_bad_image", "error")
        tf = train_transform(res, scale=a.get("scale", (0.08, 1.0)), hflip=a.get("hflip", 0.5),
                             color_jitter=a.get("color_jitter", 0.4))
        train_set = StanfordDogs(d["root"], d.get("train_split", "train"), tf, on_bad_image=on_bad,
                                 crop_to_box=bool(d.get("crop_to_box", False)))
        val_split = d.get("val_split", "test")
        evaluate = None
        if val_split:
            def evaluate(model: nn.Module) -> dict[str, Any]:
                return self.evaluate(model, d["root"], split=val_split, batch_size=int(d["batch_size"]),
                                     progress=False, on_bad_image=on_bad)
        loss = nn.CrossEntropyLoss(label_smoothing=float((cfg.get("loss") or {}).get("label_smoothing", 0.0)))
        export = {"arch": "mobilenet_v1", "model_kwargs": {**meta["model_kwargs"], "resolution": res},
                  "labels": [b.name for b in breeds()], "preprocess": {"resolution": res, "crop_fraction": 0.875,
                  "mean": [127.5] * 3, "std": [127.5] * 3}}
        return TrainParts(model=model, train_set=train_set, loss_fn=loss, evaluate=evaluate, metric="top1",
                          backbone=model.layers, export_metadata=export)
