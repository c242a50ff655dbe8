"""The ``model``/``data``/``augment``/``loss`` keys ``mnet train face_attributes`` reads."""

from __future__ import annotations

from ..schema import (
    ALPHA,
    COLOR_JITTER,
    DATA_ROOT,
    DROPOUT,
    HFLIP,
    RESOLUTION,
    SCALE,
    SPLIT,
    VAL_SPLIT,
    WEIGHTS,
    WEIGHTS_SOURCE,
    AnyOf,
    Bool,
    Key,
    ListOf,
    Num,
    OneOf,
    Section,
    Str,
)

CONFIG_SCHEMA: dict[str, Section] = {
    "model": Section(
        {
            "weights": WEIGHTS.with_default(None, doc="backbone weights: any suite weights of MobileNetV1"),
            "weights_source": WEIGHTS_SOURCE,
            "alpha": ALPHA,
            "resolution": RESOLUTION,
            "dropout": DROPOUT,
        }
    ),
    "data": Section(
        {
            "root": DATA_ROOT,
            "train_split": SPLIT,
            "val_split": VAL_SPLIT,
            "attributes": Key(ListOf(Str()), None, null=True, doc="CelebA attribute names (null: all 40)"),
            "in_the_wild": Key(Bool(), False, doc="crop faces from img_celeba by their boxes"),
        },
        doc="CelebA: <root>/img_align_celeba/, <root>/list_attr_celeba.txt, <root>/list_eval_partition.txt",
    ),
    "augment": Section(
        {"scale": SCALE.with_default([0.7, 1.0]), "hflip": HFLIP, "color_jitter": COLOR_JITTER.with_default(0.2)}
    ),
    "loss": Section(
        {
            "pos_weight": Key(
                AnyOf((OneOf(("auto",)), ListOf(Num(0)))),
                None,
                null=True,
                doc="auto (negatives/positives) or one weight per attribute",
            ),
            "teacher": Key(Str(), None, null=True, doc="a face-attribute model whose outputs are soft targets"),
            "label_weight": Key(Num(0, 1), None, null=True, doc="λ on the labels; null: 0 with a teacher, else 1"),
        }
    ),
}
