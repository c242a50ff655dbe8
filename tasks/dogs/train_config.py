"""The ``model``/``data``/``augment``/``loss`` keys ``mnet train dogs`` reads (``DogsTask.train_parts``)."""

from __future__ import annotations

from ..classification.train_config import CONFIG_SCHEMA as CLASSIFICATION
from ..schema import VAL_SPLIT, Bool, Key, OneOf, Section, merge
from .pretrained import HEAD_INITS

CONFIG_SCHEMA: dict[str, Section] = {
    **CLASSIFICATION,
    "model": merge(
        CLASSIFICATION["model"],
        Section(
            {
                "head_init": Key(
                    OneOf(HEAD_INITS),
                    "zero_shot",
                    doc="zero_shot: the ImageNet classifier's 120 dog rows; random: a fresh head",
                )
            }
        ),
    ),
    "data": merge(
        CLASSIFICATION["data"],
        Section(
            {
                "val_split": VAL_SPLIT.with_default("test"),
                "crop_to_box": Key(Bool(), False, doc="crop training images to their annotated dog box"),
            },
            doc="Stanford Dogs: <root>/Images/, <root>/lists/*.mat",
        ),
    ),
}
