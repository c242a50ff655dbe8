"""``DetectionTask``: SSD-MobileNetV1 on COCO-format data, scored with COCO mAP (pycocotools).

Detection input contract: an image tensor (N, 3, H, W) normalised per the model's ``mean``/``std``;
training targets per image are ``boxes`` (G, 4) float, xyxy, in pixels of that tensor, and ``labels``
(G,) int64 in 1..num_classes (0 is background). Outputs: the same box convention, ``scores`` and
``labels``; ``model.config.category_ids`` maps labels to dataset category ids.
"""
from __future__ import annotations

from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from backbone import Cost, count_cost

from ..base import Task, register_task
from .anchors import AnchorConfig
from .data import CocoDetection, collate
from .loss import LossConfig
from .metrics import coco_eval, to_coco_results, write_results
from .model import SSD, SSDConfig
from .postprocess import PostprocessConfig
from .predict import eval_transform

#: nested config blocks that ``build_model`` accepts as plain dicts (as stored in weights metadata)
_NESTED = {"anchors": AnchorConfig, "loss": LossConfig, "postprocess": PostprocessConfig}


def make_config(**kwargs: Any) -> SSDConfig:
    """An :class:`SSDConfig` from plain keywords; ``anchors``/``loss``/``postprocess`` may be dicts."""
    known = {f.name for f in fields(SSDConfig)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"unknown SSD option(s) {unknown}; known: {sorted(known)}")
    for key, cls in _NESTED.items():
        if isinstance(kwargs.get(key), dict):
            kwargs[key] = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs[key].items()})
    for key in ("tap_strides", "extra_depths", "box_coder_scales", "category_ids"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(tuple(v) if isinstance(v, list) else v for v in kwargs[key])
    return SSDConfig(**kwargs)


def with_postprocess(model: SSD, **overrides: Any) -> SSD:
    """Change the model's post-processing in place (e.g. ``nms="fast", max_detections=10``)."""
    model.config = replace(model.config, postprocess=replace(model.config.postprocess, **overrides))
    return model


@register_task
class DetectionTask(Task):
    """SSD300 on MobileNetV1 (Table 13: 19.3 COCO mAP, 1.2 B Mult-Adds, 6.8 M params at α = 1)."""

    name = "detection"
    description = "COCO object detection, SSD on MobileNetV1 (COCO bbox mAP)"

    def build_model(self, *, alpha: float, resolution: int = 300, num_classes: int = 90, **kwargs: Any) -> SSD:
        return SSD(make_config(alpha=alpha, resolution=resolution, num_classes=num_classes, **kwargs))

    def cost(self, model: nn.Module, resolution: int) -> Cost:
        """Backbone taps + extra layers + heads (decode/NMS has no Mult-Adds by the paper's convention)."""
        return count_cost(model, resolution, forward=lambda m, x: m.forward_raw(x))

    def inference_fn(self, model: nn.Module) -> Callable[[torch.Tensor], object]:
        """The network, then decode and NMS (what a user waits for)."""
        model.eval()
        return model

    def evaluate(
        self,
        model: nn.Module,
        data: str | Path,
        *,
        split: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        progress: bool = True,
        preprocess: Any = None,
        weights_meta: dict[str, Any] | None = None,
        limit: int | None = None,
        results_json: str | Path | None = "auto",
        postprocess: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """COCOeval (bbox) on ``<data>/<split>`` (default val2017) → AP, AP50, AP75, APs/m/l, AR…, ``n``.

        ``postprocess`` overrides the model's (e.g. ``{"nms": "per_class", "max_detections": 100}``);
        ``preprocess`` (the weights' recorded input recipe) sets the normalisation; ``results_json``
        is where the detections go in COCO results format (``"auto"``: ``runs/detection/``, None: nowhere).
        """
        if not isinstance(model, SSD):
            raise ValueError(f"detection evaluation needs an SSD model, got {type(model).__name__}")
        if kwargs:
            raise ValueError(f"unknown detection evaluation option(s): {sorted(kwargs)}")
        if postprocess:
            model = with_postprocess(model, **postprocess)
        split = split or "val2017"
        ds = CocoDetection(data, split)
        category_ids = list(model.config.category_ids or ds.category_ids)
        if model.config.category_ids is None and len(category_ids) != model.config.num_classes:
            raise ValueError(f"model has {model.config.num_classes} classes but {ds.ann_file} has "
                             f"{len(category_ids)} categories; give the model category_ids")
        ds.transform = eval_transform(model, preprocess)
        if limit is not None:
            ds.ids = ds.ids[:limit]
        loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
        device = next(model.parameters()).device
        model.eval()
        results: list[dict[str, Any]] = []
        with torch.inference_mode():
            for images, targets in tqdm(loader, desc=f"eval detection {split}", unit="batch", disable=not progress):
                dets = model(images.to(device), image_sizes=[t["orig_size"] for t in targets])
                for t, d in zip(targets, dets):
                    results.extend(to_coco_results(t["image_id"], d, category_ids))
        metrics: dict[str, Any] = coco_eval(ds.coco, results, ds.ids)
        metrics["detections"] = len(results)
        metrics["postprocess"] = asdict(model.config.postprocess)
        if results_json == "auto":
            name = (weights_meta or {}).get("entry") or "model"
            results_json = Path("runs") / "detection" / f"{name}_{split}_results.json"
        if results_json:
            metrics["results_json"] = str(write_results(results, results_json))
        return metrics
