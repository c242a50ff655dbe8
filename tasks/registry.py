"""The task catalogue: every task's name, one-line description, default weights and the module that
implements it, known without importing that module (so ``mnet --help`` and the ONNX Runtime predict
path never import torch). :func:`get_task` imports the implementation on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Task


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    #: the sub-package whose import registers the task's :class:`~mnet.tasks.base.Task`
    module: str
    #: the weights ``mnet predict TASK`` uses when given none (a registry entry name)
    default_weights: str


TASK_SPECS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "classification",
            "ImageNet-1k classification (top-1 / top-5)",
            "mnet.tasks.classification.task",
            "mobilenet_v1_1.0_224.tfslim_in1k",
        ),
        TaskSpec(
            "dogs",
            "Stanford Dogs, 120 breeds (top-1 / top-5; paper Table 10)",
            "mnet.tasks.dogs.task",
            "mobilenet_v1_1.0_224.tfslim_in1k",
        ),
        TaskSpec(
            "detection",
            "SSD object detection, COCO (AP via pycocotools; paper Table 13)",
            "mnet.tasks.detection.task",
            "ssd_mobilenet_v1_0.75_300.tflite_coco_quant",
        ),
        TaskSpec(
            "face_attributes",
            "faces in the wild: CelebA's 40 attributes, age and gender per face (mean AP; paper Table 12)",
            "mnet.tasks.face_attributes.task",
            "face_attributes_mobilenet_v1_1.0_224.celeba400",
        ),
    )
}


def task_names() -> list[str]:
    return list(TASK_SPECS)


def task_spec(name: str) -> TaskSpec:
    try:
        return TASK_SPECS[name]
    except KeyError:
        import difflib

        near = difflib.get_close_matches(name, TASK_SPECS, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"unknown task {name!r}{hint}; known tasks: {', '.join(TASK_SPECS)}") from None


def get_task(name: str) -> Task:
    """The registered :class:`~mnet.tasks.base.Task` named ``name`` (its module imported on first use)."""
    from .base import TASKS

    if name not in TASKS:
        importlib.import_module(task_spec(name).module)
    return TASKS[name]
