"""The ``model``/``data``/``augment`` keys ``mnet train detection`` reads (``DetectionTask.train_parts``).

``model.ssd`` takes any :class:`~tasks.detection.model.SSDConfig` field (nested ``anchors``, ``loss``,
``postprocess``) except those the run sets itself (α, ρ, the dataset's classes); the detector's loss is
``model.ssd.loss``, so the top-level ``loss`` section takes no keys.
"""

from __future__ import annotations

from ..schema import (
    ALPHA,
    DATA_ROOT,
    RESOLUTION,
    VAL_SPLIT,
    WEIGHTS,
    WEIGHTS_SOURCE,
    Bool,
    Int,
    Key,
    ListOf,
    Num,
    Section,
    Str,
    section_from_dataclass,
)
from .model import SSDConfig

CONFIG_SCHEMA: dict[str, Section] = {
    "model": Section(
        {
            "weights": WEIGHTS.with_default(None, doc="a detector: registry entry or .safetensors"),
            "weights_source": WEIGHTS_SOURCE,
            "alpha": ALPHA.with_default(None, doc="α; null: the weights' (detector or backbone), else 1.0"),
            "resolution": RESOLUTION.with_default(None, null=True, doc="ρ; null: the detector weights', else 300"),
            "backbone_weights": Key(Str(), None, null=True, doc="ImageNet backbone weights for a fresh SSD"),
            "backbone_weights_source": WEIGHTS_SOURCE,
            "ssd": section_from_dataclass(SSDConfig, exclude=("alpha", "resolution", "num_classes", "category_ids")),
        }
    ),
    "data": Section(
        {
            "root": DATA_ROOT,
            "train_split": Key(Str(), "train2017"),
            "val_split": VAL_SPLIT.with_default("val2017"),
            "val_limit": Key(Int(1), None, null=True, doc="evaluate on the first N validation images"),
            "skip_missing": Key(Bool(), False, doc="skip annotated images whose file is missing"),
        },
        doc="COCO format: <root>/<split>/, <root>/annotations/instances_<split>.json",
    ),
    "augment": Section(
        {
            "enabled": Key(Bool(), True, doc="SSD augmentation; false: resize only"),
            "zoom_out": Key(ListOf(Num(0, 1, lo_open=True), 2), [0.25, 1.0], doc="zoom-out scale range"),
        }
    ),
    "loss": Section(doc="detection's loss options are model.ssd.loss.*"),
}
