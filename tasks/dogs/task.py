"""Fine-grained Stanford Dogs (paper Sec. 4.3, Table 10): the backbone plus a 120-way classifier.

All 120 breeds are ImageNet-1k classes, so ImageNet pretraining overlaps Stanford Dogs: the ImageNet
classifier's 120 dog rows already form a zero-shot dogs head, and they initialise the fine-tuned one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from mnet.backbone import Cost, count_cost, mobilenet_v1

from ..base import Task, register_task
from ..classification.augment import train_transform
from ..inference import Predictor
from ..pretrained import Pretrained, model_predictor
from .data import NUM_BREEDS, StanfordDogs, breeds
from .pretrained import dogs_model_from_weights
from .train_config import CONFIG_SCHEMA


@register_task
class DogsTask(Task):
    """120-way Stanford Dogs; params exclude the ImageNet classifier (Table 10: 3.3 M at α 1.0)."""

    name = "dogs"
    primary_metric = "top1"
    weights_tasks = ("dogs", "classification")
    config_schema = CONFIG_SCHEMA

    def build_model(self, *, alpha: float, resolution: int, **kwargs) -> nn.Module:
        kwargs.setdefault("num_classes", NUM_BREEDS)
        return mobilenet_v1(alpha=alpha, resolution=resolution, **kwargs)

    def cost(self, model: nn.Module, resolution: int) -> Cost:
        """Backbone + 120-way FC, as Table 10 counts it."""
        return count_cost(model, resolution)

    def load_model(
        self,
        weights: str | Path,
        *,
        resolution: int | None = None,
        head: str = "zero_shot",
        source: str | Path | None = None,
    ) -> nn.Module:
        """A dogs model from a weights entry/file: a dogs checkpoint as is, an ImageNet classifier with its
        120 dog rows as the head (``head='zero_shot'``) or a fresh head (``'random'``)."""
        return dogs_model_from_weights(weights, resolution=resolution, head=head, source=source)[0]

    def load_pretrained(self, weights: str | Path, *, source: str | Path | None = None) -> Pretrained:
        """Dogs weights, or ImageNet classification weights as the zero-shot dogs model (their 120 dog
        rows), named by breed."""
        from ..pretrained import pretrained

        model, w, info = dogs_model_from_weights(weights, source=source)
        name = f"{weights} (zero-shot dog rows)" if info["head_init"] == "zero_shot" else str(weights)
        return pretrained(
            w, model, name, task=self.name, labels=[b.name for b in breeds()], model_kwargs=info["model_kwargs"]
        )

    def evaluate(
        self,
        predictor: Predictor,
        data: str | Path,
        *,
        split: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        progress: bool = True,
        on_bad_image: str = "error",
        limit: int | None = None,
        weights_meta: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Top-1 / top-5 (%), ``n`` and skipped images on a split (default ``test``), with the predictor's
        own input recipe."""
        from ..classification.evaluate import ranked_accuracy
        from ..data.batches import collate_skip_bad

        ds = StanfordDogs(data, split or "test", predictor.preprocess.to_array, on_bad_image=on_bad_image)
        if limit is not None:
            ds.samples = ds.samples[:limit]
        unlisted = len(ds.skipped)  # listed photos missing before the run; unreadable ones are counted in it
        meter, bad = ranked_accuracy(
            predictor,
            ds,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            desc=f"eval dogs/{ds.split}",
            collate_fn=collate_skip_bad(),
        )
        return {
            **meter.result(),
            "n": meter.n,
            "skipped_images": bad + unlisted,
            "preprocess": predictor.preprocess.to_dict(),
        }

    def train_parts(self, cfg: Mapping[str, Any]):
        from dataclasses import replace

        from mnet.weights import Preprocess

        from ..training import TrainParts

        m, d, a = cfg["model"], cfg["data"], cfg.get("augment") or {}
        res = int(m["resolution"])
        if m.get("weights"):
            model, w, meta = dogs_model_from_weights(
                m["weights"],
                resolution=res,
                head=m.get("head_init", "zero_shot"),
                alpha=m.get("alpha"),
                dropout=m.get("dropout", 0.0),
                source=m.get("weights_source"),
            )
            # keep the pretrained weights' input recipe (normalisation, eval crop) at the new resolution
            pre = replace(w.preprocess, resolution=res)
        else:
            alpha = float(m["alpha"] or 1.0)
            model = self.build_model(alpha=alpha, resolution=res, dropout=m.get("dropout", 0.0))
            meta = {"model_kwargs": {"alpha": alpha, "resolution": res, "num_classes": NUM_BREEDS}}
            pre = Preprocess(res, crop_fraction=0.875)
        on_bad = d.get("on_bad_image", "error")
        tf = train_transform(
            res,
            scale=a.get("scale", (0.08, 1.0)),
            hflip=a.get("hflip", 0.5),
            color_jitter=a.get("color_jitter", 0.4),
            mean=pre.mean,
            std=pre.std,
        )
        train_set = StanfordDogs(
            d["root"],
            d.get("train_split", "train"),
            tf,
            on_bad_image=on_bad,
            crop_to_box=bool(d.get("crop_to_box", False)),
        )
        val_split = d.get("val_split", "test")
        evaluate = None
        if val_split:

            def evaluate(model: nn.Module) -> dict[str, Any]:
                return self.evaluate(
                    model_predictor(self, model, pre, labels=[b.name for b in breeds()]),
                    d["root"],
                    split=val_split,
                    batch_size=int(d["batch_size"]),
                    progress=False,
                    on_bad_image=on_bad,
                )

        loss = nn.CrossEntropyLoss(label_smoothing=float((cfg.get("loss") or {}).get("label_smoothing", 0.0)))
        export = {
            "arch": "mobilenet_v1",
            "model_kwargs": {**meta["model_kwargs"], "resolution": res},
            "labels": [b.name for b in breeds()],
            "preprocess": pre.to_dict(),
            "init_from": meta.get("init_from"),
        }
        return TrainParts(
            model=model,
            train_set=train_set,
            loss_fn=loss,
            evaluate=evaluate,
            metric="top1",
            backbone=model.layers,
            export_metadata=export,
        )
