"""The ``model``/``data``/``augment``/``loss`` keys ``mnet train classification`` reads (``finetune.py``)."""

from __future__ import annotations

from ..schema import (
    ALPHA,
    COLOR_JITTER,
    DATA_ROOT,
    DROPOUT,
    HFLIP,
    LABEL_SMOOTHING,
    ON_BAD_IMAGE,
    RESOLUTION,
    SCALE,
    SPLIT,
    VAL_SPLIT,
    WEIGHTS,
    WEIGHTS_SOURCE,
    Section,
)

CONFIG_SCHEMA: dict[str, Section] = {
    "model": Section(
        {
            "weights": WEIGHTS,
            "weights_source": WEIGHTS_SOURCE,
            "alpha": ALPHA,
            "resolution": RESOLUTION,
            "dropout": DROPOUT,
        }
    ),
    "data": Section(
        {"root": DATA_ROOT, "train_split": SPLIT, "val_split": VAL_SPLIT, "on_bad_image": ON_BAD_IMAGE},
        doc="ImageFolder or ImageNet layout: <root>/<split>/<class>/*",
    ),
    "augment": Section({"scale": SCALE, "hflip": HFLIP, "color_jitter": COLOR_JITTER}),
    "loss": Section({"label_smoothing": LABEL_SMOOTHING}),
}
