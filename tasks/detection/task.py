"""``DetectionTask``: SSD-MobileNetV1 on COCO-format data, scored with COCO mAP (pycocotools).

Detection input contract: an image tensor (N, 3, H, W) normalised per the model's ``mean``/``std``;
training targets per image are ``boxes`` (G, 4) float, xyxy, in pixels of that tensor, and ``labels``
(G,) int64 in 1..num_classes (0 is background). Outputs: the same box convention, ``scores`` and
``labels``; ``model.config.category_ids`` maps labels to dataset category ids.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from torch import nn
from tqdm import tqdm

from mnet.backbone import Cost, count_cost
from mnet.weights import Preprocess

from ..base import Task, register_task
from ..inference import Predictor
from ..pretrained import model_predictor
from .anchors import AnchorConfig
from .data import CocoDetection, collate_targets
from .loss import LossConfig
from .metrics import coco_eval, to_coco_results, write_results
from .model import SSD, SSDConfig
from .network import SSDWithNMS
from .postprocess import PostprocessConfig
from .train_config import CONFIG_SCHEMA
from .transforms import EvalTransform, TrainTransform

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


def config_dict(config: SSDConfig) -> dict[str, Any]:
    """The config as plain JSON-able data (what weights metadata stores; ``make_config`` reads it back)."""
    return json.loads(json.dumps(asdict(config)))


def load_backbone(model: SSD, weights: Any, source: str | None = None) -> None:
    """Load ImageNet backbone weights (a classification registry entry or .safetensors, or already loaded
    :class:`weights.LoadedWeights`) into ``model.backbone``."""
    from mnet.weights import LoadedWeights, load_weights

    w = weights if isinstance(weights, LoadedWeights) else load_weights(weights, source=source)
    weights = w.path if isinstance(weights, LoadedWeights) else weights
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

    config_schema = CONFIG_SCHEMA
    name = "detection"
    primary_metric = "AP"
    weights_tasks = ("detection",)
    check_images = ("data", "coco", "val2017")
    calibration_images = ("data", "coco", "train2017")

    def build_model(self, *, alpha: float, resolution: int = 300, num_classes: int = 90, **kwargs: Any) -> SSD:
        return SSD(make_config(alpha=alpha, resolution=resolution, num_classes=num_classes, **kwargs))

    def cost(self, model: nn.Module, resolution: int) -> Cost:
        """Backbone taps + extra layers + heads (decode/NMS has no Mult-Adds by the paper's convention)."""
        return count_cost(model, resolution, forward=lambda m, x: m.forward_raw(x))

    def output_kind(self, model: nn.Module) -> str:
        return "boxes"

    def inference_network(self, model: nn.Module) -> nn.Module:
        """SSD → decoded boxes → the model's NMS, all in the graph (one image at a time; see
        :mod:`mnet.tasks.detection.network`)."""
        return SSDWithNMS(model)

    def evaluate(
        self,
        predictor: Predictor,
        data: str | Path,
        *,
        split: str | None = None,
        progress: bool = True,
        limit: int | None = None,
        results_json: str | Path | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """COCOeval (bbox) on ``<data>/<split>`` (default val2017) → AP, AP50, AP75, APs/m/l, AR…, ``n``,
        through the one inference path (:class:`~mnet.tasks.inference.Predictor`: photo → boxes in its
        pixels). ``results_json``: where to write the detections in COCO results format (default: nowhere)."""
        kwargs.pop("batch_size", None), kwargs.pop("num_workers", None)  # detections run one photo at a time
        if kwargs:
            raise ValueError(f"unknown detection evaluation option(s): {sorted(kwargs)}")
        if predictor.kind != "boxes":
            raise ValueError(
                f"{predictor.model}: detection evaluation needs a detector, got a {predictor.kind!r} model"
            )
        split = split or "val2017"
        ds = CocoDetection(data, split)
        category_ids = list(predictor.meta.get("category_ids") or ds.category_ids)
        n_classes = len(predictor.labels) if predictor.labels else None
        if n_classes is not None and len(category_ids) < n_classes:
            raise ValueError(
                f"{predictor.model} has {n_classes} classes but {ds.ann_file} has {len(category_ids)} "
                "categories; give the model category_ids"
            )
        ids = ds.ids[:limit] if limit is not None else ds.ids
        results: list[dict[str, Any]] = []
        for img_id in tqdm(ids, desc=f"eval detection {split}", unit="img", disable=not progress):
            r = predictor.predict_file(ds.image_dir / ds.coco.imgs[img_id]["file_name"])
            results.extend(to_coco_results(img_id, r.boxes, category_ids))
        metrics: dict[str, Any] = coco_eval(ds.coco, results, ids)
        metrics["detections"] = len(results)
        if results_json:
            metrics["results_json"] = str(write_results(results, results_json))
        return metrics

    # -- training (the engine: ``mnet train detection --config ...``) ------------------------------
    def build_for_training(self, m: Mapping[str, Any], dataset: CocoDetection) -> tuple[SSD, dict[str, Any]]:
        """The model a run starts from: imported detector weights (``model.weights``), or a fresh SSD on
        the dataset's classes with optional ImageNet backbone weights (``model.backbone_weights``)."""
        from mnet.weights import load_weights

        from ..pretrained import build_pretrained

        overrides = {k: v for k, v in (m.get("ssd") or {}).items()}
        alpha, res = m.get("alpha"), m.get("resolution")
        if m.get("weights"):
            model, w = build_pretrained(m["weights"], source=m.get("weights_source"), **overrides)
            for key, wanted in (("alpha", alpha), ("resolution", res)):
                have = getattr(model.config, key)
                if wanted is not None and abs(float(wanted) - float(have)) > 1e-9:
                    raise ValueError(
                        f"model.{key}={wanted} but the detector weights {m['weights']} have {key} {have}; "
                        f"drop model.{key} (null takes the weights') or pick other weights"
                    )
            preprocess = w.meta.get("preprocess")
        else:
            backbone = None
            if m.get("backbone_weights"):
                backbone = load_weights(m["backbone_weights"], source=m.get("backbone_weights_source"))
                have = backbone.model_kwargs.get("alpha")
                if alpha is None:  # null: the backbone weights' α
                    alpha = have
                elif have is not None and abs(float(alpha) - float(have)) > 1e-9:
                    raise ValueError(
                        f"model.alpha={alpha} but the backbone weights {m['backbone_weights']} are for α={have}; "
                        f"drop model.alpha (null takes the weights') or pick weights of that width"
                    )
            model = self.build_model(
                alpha=float(1.0 if alpha is None else alpha),
                resolution=int(res or 300),
                num_classes=dataset.num_classes,
                category_ids=list(dataset.category_ids),
                **overrides,
            )
            if backbone is not None:
                load_backbone(model, backbone)
            preprocess = None
        cfg = model.config
        if preprocess is None:
            mean, std = [cfg.mean * 255] * 3, [cfg.std * 255] * 3
            preprocess = {"resolution": cfg.resolution, "mean": mean, "std": std}
        return model, preprocess

    def train_parts(self, cfg: Mapping[str, Any]):
        """COCO-format training: ``data.root`` in the official layout, ``data.train_split``/``val_split``;
        ``model.weights`` (detector) or ``model.alpha``/``resolution`` [+ ``backbone_weights``] (null: the
        weights' α and ρ, else 1.0 and 300);
        ``model.ssd`` overrides SSD options (e.g. ``{loss: {classification: focal}}``)."""
        from ..training import TrainParts

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
                predictor = model_predictor(self, model, Preprocess.from_dict(preprocess), labels=train_set.class_names)
                r = self.evaluate(predictor, d["root"], split=val_split, progress=False, limit=d.get("val_limit"))
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
