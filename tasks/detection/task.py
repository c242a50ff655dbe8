"""``DetectionTask``: SSD-MobileNetV1 on COCO-format data, scored with COCO mAP (pycocotools).

Detection input contract: an image tensor (N, 3, H, W) normalised per the model's ``mean``/``std``;
training targets per image are ``boxes`` (G, 4) float, xyxy, in pixels of that tensor, and ``labels``
(G,) int64 in 1..num_classes (0 is background). Outputs: the same box convention, ``scores`` and
``labels``; ``model.config.category_ids`` maps labels to dataset category ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from mnet.backbone import Cost, count_cost

from ..base import Task, register_task
from ..checks import check_finite, model_name
from .anchors import AnchorConfig
from .data import CocoDetection, collate, collate_targets
from .loss import LossConfig
from .metrics import coco_eval, to_coco_results, write_results
from .model import SSD, SSDConfig
from .network import SSDNetwork, SSDOnRuntime, SSDWithNMS, detections
from .postprocess import PostprocessConfig
from .predict import eval_transform
from .transforms import EvalTransform, TrainTransform

#: nested config blocks that ``build_model`` accepts as plain dicts (as stored in weights metadata)
_NESTED = {"anchors": AnchorConfig, "loss": LossConfig, "postprocess": PostprocessConfig}


def checked_detections(
    model: SSD | SSDOnRuntime, x: torch.Tensor, sizes: Sequence[tuple[int, int]], name: str
) -> list[dict[str, torch.Tensor]]:
    """``model(x, image_sizes=sizes)`` with the network's boxes and scores checked finite before NMS (a NaN
    score never passes the score threshold, so NaN weights would otherwise score a quiet AP of 0)."""
    if isinstance(model, SSDOnRuntime) and model.nms_in_graph:  # only the graph's selection is visible
        dets = model(x, image_sizes=list(sizes))
        check_finite(dets, name, "detections")
        return dets
    outputs = model.network(x) if isinstance(model, SSDOnRuntime) else SSDNetwork(model)(x)
    check_finite(outputs, name, "box and score outputs")
    return detections(outputs, model.config.postprocess, sizes)


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


def config_dict(config: SSDConfig) -> dict[str, Any]:
    """The config as plain JSON-able data (what weights metadata stores; ``make_config`` reads it back)."""
    return json.loads(json.dumps(asdict(config)))


def load_backbone(model: SSD, weights: str, source: str | None = None) -> None:
    """Load ImageNet backbone weights (a classification registry entry or .safetensors) into ``model.backbone``."""
    from mnet.weights import load_weights

    w = load_weights(weights, source=source)
    sd = {k: v for k, v in w.state_dict.items() if not k.startswith("head.")}
    missing, unexpected = model.backbone.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked") and not k.startswith("head.")]
    if missing or unexpected:
        raise ValueError(
            f"{weights}: not MobileNetV1 backbone weights for α={model.config.alpha} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


def with_postprocess(model: SSD, **overrides: Any) -> SSD:
    """Change the model's post-processing in place (e.g. ``nms="fast", max_detections=10``)."""
    model.config = replace(model.config, postprocess=replace(model.config.postprocess, **overrides))
    return model


@register_task
class DetectionTask(Task):
    """SSD300 on MobileNetV1 (Table 13: 19.3 COCO mAP, 1.2 B Mult-Adds, 6.8 M params at α = 1)."""

    name = "detection"
    primary_metric = "AP"
    weights_tasks = ("detection",)
    description = "COCO object detection, SSD on MobileNetV1 (COCO bbox mAP)"
    check_images = ("data", "coco", "val2017")
    calibration_images = ("data", "coco", "train2017")

    def build_model(self, *, alpha: float, resolution: int = 300, num_classes: int = 90, **kwargs: Any) -> SSD:
        return SSD(make_config(alpha=alpha, resolution=resolution, num_classes=num_classes, **kwargs))

    def cost(self, model: nn.Module, resolution: int) -> Cost:
        """Backbone taps + extra layers + heads (decode/NMS has no Mult-Adds by the paper's convention)."""
        return count_cost(model, resolution, forward=lambda m, x: m.forward_raw(x))

    def inference_fn(self, model: nn.Module) -> Callable[[torch.Tensor], object]:
        """The network, then decode and NMS (what a user waits for)."""
        model.eval()
        return model

    def network(self, model: nn.Module) -> nn.Module:
        """SSD up to decoded boxes and scores (see :mod:`tasks.detection.network`); NMS stays outside."""
        return SSDNetwork(model)

    def export_network(self, model: nn.Module, *, with_postprocess: bool = False) -> nn.Module:
        """The network, or with ``with_postprocess`` a batch-1 graph that ends in the model's NMS
        (ONNX ``NonMaxSuppression``; :class:`~tasks.detection.network.SSDWithNMS`)."""
        return SSDWithNMS(model) if with_postprocess else self.network(model)

    def with_network(self, model: nn.Module, network: Callable[..., Any]) -> SSDOnRuntime:
        return SSDOnRuntime(model, network)

    def postprocess_options(self, model: nn.Module | None) -> dict[str, Any]:
        return {"config": model.config.postprocess} if model is not None else {}

    def postprocess(
        self,
        outputs: Any,
        *,
        labels: Sequence[str] | None = None,
        top_k: int = 5,
        image_sizes: Sequence[tuple[int, int]] | None = None,
        config: PostprocessConfig | None = None,
        **_: Any,
    ) -> list[dict[str, Any]]:
        """Network outputs (numpy: boxes + scores, or boxes + scores + labels of a graph with NMS) →
        per image ``{"detections": [{"box": [x1, y1, x2, y2] pixels of the original, "score", "index", "label"}]}``.
        ``config`` is the model's NMS settings (needed unless the graph ran NMS); ``image_sizes`` (W, H)."""
        outs = [
            torch.from_numpy(np.asarray(o, dtype=np.float32 if i < 2 else np.int64))
            for i, o in enumerate(outputs if isinstance(outputs, (list, tuple)) else [outputs])
        ]
        if len(outs) == 2 and config is None:
            raise ValueError("detection postprocess needs the model's NMS settings (config=PostprocessConfig)")
        n = 1 if len(outs) == 3 else len(outs[0])
        sizes = [(h, w) for w, h in image_sizes] if image_sizes else [(1, 1)] * n
        results = []
        for det in detections(outs, config or PostprocessConfig(), sizes):
            results.append(
                {
                    "detections": [
                        {
                            "box": [round(float(v), 2) for v in box],
                            "score": float(score),
                            "index": int(lab),
                            "label": labels[int(lab) - 1] if labels and 0 < lab <= len(labels) else str(int(lab)),
                        }
                        for box, score, lab in zip(
                            det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist()
                        )
                    ]
                }
            )
        return results

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
        if not isinstance(model, (SSD, SSDOnRuntime)):
            raise ValueError(f"detection evaluation needs an SSD model, got {type(model).__name__}")
        if kwargs:
            raise ValueError(f"unknown detection evaluation option(s): {sorted(kwargs)}")
        if postprocess:
            model = with_postprocess(model, **postprocess)
        split = split or "val2017"
        ds = CocoDetection(data, split)
        category_ids = list(model.config.category_ids or ds.category_ids)
        if model.config.category_ids is None and len(category_ids) != model.config.num_classes:
            raise ValueError(
                f"model has {model.config.num_classes} classes but {ds.ann_file} has "
                f"{len(category_ids)} categories; give the model category_ids"
            )
        ds.transform = eval_transform(model, preprocess)
        if limit is not None:
            ds.ids = ds.ids[:limit]
        loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
        device = next(model.parameters()).device
        model.eval()
        results: list[dict[str, Any]] = []
        name = model_name(model, weights_meta)
        with torch.inference_mode():
            for images, targets in tqdm(loader, desc=f"eval detection {split}", unit="batch", disable=not progress):
                dets = checked_detections(model, images.to(device), [t["orig_size"] for t in targets], name)
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

    # -- training (the engine: ``mnet train detection --config ...``) ------------------------------
    def build_for_training(self, m: Mapping[str, Any], dataset: CocoDetection) -> tuple[SSD, dict[str, Any]]:
        """The model a run starts from: imported detector weights (``model.weights``), or a fresh SSD on
        the dataset's classes with optional ImageNet backbone weights (``model.backbone_weights``)."""
        overrides = {k: v for k, v in (m.get("ssd") or {}).items()}
        if m.get("weights"):
            from mnet.weights import build_pretrained

            model, w = build_pretrained(m["weights"], source=m.get("weights_source"), **overrides)
            preprocess = w.meta.get("preprocess")
        else:
            model = self.build_model(
                alpha=float(m["alpha"]),
                resolution=int(m["resolution"]),
                num_classes=dataset.num_classes,
                category_ids=list(dataset.category_ids),
                **overrides,
            )
            if m.get("backbone_weights"):
                load_backbone(model, m["backbone_weights"], m.get("backbone_weights_source"))
            preprocess = None
        cfg = model.config
        if preprocess is None:
            mean, std = [cfg.mean * 255] * 3, [cfg.std * 255] * 3
            preprocess = {"resolution": cfg.resolution, "mean": mean, "std": std}
        return model, preprocess

    def train_parts(self, cfg: Mapping[str, Any]):
        """COCO-format training: ``data.root`` in the official layout, ``data.train_split``/``val_split``;
        ``model.weights`` (detector) or ``model.alpha``/``resolution`` [+ ``backbone_weights``];
        ``model.ssd`` overrides SSD options (e.g. ``{loss: {classification: focal}}``)."""
        from ..engine import TrainParts

        m, d, a = cfg["model"], cfg["data"], cfg.get("augment") or {}
        if not d.get("root"):
            raise ValueError("data.root is required: a COCO-format folder (<root>/<split>/, <root>/annotations/)")
        probe = CocoDetection(d["root"], d.get("train_split", "train2017"))
        model, preprocess = self.build_for_training(m, probe)
        cfg_m = model.config
        category_ids = list(cfg_m.category_ids or probe.category_ids)
        mean = tuple(v / 255 for v in preprocess["mean"])
        std = tuple(v / 255 for v in preprocess["std"])
        tf = (
            TrainTransform(cfg_m.resolution, mean, std, zoom_out=tuple(a.get("zoom_out", (0.25, 1.0))))
            if a.get("enabled", True)
            else EvalTransform(cfg_m.resolution, mean, std)
        )
        train_set = CocoDetection(
            d["root"],
            d.get("train_split", "train2017"),
            transform=tf,
            category_ids=category_ids,
            skip_missing=bool(d.get("skip_missing", False)),
        )
        val_split = d.get("val_split", "val2017")
        evaluate = None
        if val_split:

            def evaluate(model: nn.Module) -> dict[str, Any]:
                r = self.evaluate(
                    model,
                    d["root"],
                    split=val_split,
                    batch_size=int(d["batch_size"]),
                    progress=False,
                    results_json=None,
                    limit=d.get("val_limit"),
                )
                return {k: r[k] for k in ("AP", "AP50", "AP75", "AR100", "n")}

        export = {
            "arch": "ssd_mobilenet_v1",
            "model_kwargs": config_dict(cfg_m),
            "preprocess": preprocess,
            "labels": train_set.class_names,
        }
        return TrainParts(
            model=model,
            train_set=train_set,
            loss_fn=model.criterion,
            evaluate=evaluate,
            metric="AP",
            backbone=model.backbone,
            collate_fn=collate_targets,
            export_metadata=export,
        )
