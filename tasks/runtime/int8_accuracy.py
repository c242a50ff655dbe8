"""How much int8 changes a task's accuracy: measured when ``mnet export --int8`` writes the file, on
held-out photos of the task, and recorded in the file's metadata.

The per-machine runtime choice (:mod:`tasks.runtime.choice`) runs an int8 file only when this record
says the change is small (at most :data:`MAX_DROP_PT` points worse than fp32); a file without a record
is never run in int8 by the choice.

What is measured, per task (:data:`PROBES`):

- ``classification``: top-1 accuracy of the fp32 and the int8 file against the photos' labels, on up to
  1,000 ImageNet validation photos (``shared/data/imagenet/val`` or ``accuracy_data``) that were *not*
  among the calibration photos.
- ``detection``: COCO AP (pycocotools, in points: AP × 100) of both files with the model's own NMS
  settings, on up to 1,000 val2017 photos; calibration is on train2017 by default, and calibration photos
  inside the evaluated split make the probe refuse (the AP would not be held out).

Other tasks have no probe yet: their int8 files carry no record, so the choice keeps them in fp32.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: metadata keys: the whole record (JSON) and the change alone, in points (int8 − fp32; negative: worse)
META_INT8_ACCURACY = "mnet.int8_accuracy"
META_INT8_DELTA = "mnet.int8_accuracy_delta"
#: int8 is a candidate only when it loses at most this many points (top-1 %, or AP × 100)
MAX_DROP_PT = 1.5
#: held-out photos measured (at most): with 200, one photo is 0.5 pt and the change read −3.0 pt where
#: 1,100 photos gave −1.55 (0.5-160, 7-bit weights)
DEFAULT_COUNT = 1000


class NoProbeData(ValueError):
    """The probe cannot run here (no labelled held-out photos); the message says what is missing."""


@dataclass(frozen=True)
class Int8Accuracy:
    """The metric of the fp32 and the int8 file on the same held-out photos, in points."""

    metric: str  # "top-1" | "AP"
    fp32: float
    int8: float
    n: int
    data: str  # what it was measured on, in words

    @property
    def delta(self) -> float:
        """int8 − fp32, in points (negative: int8 is worse)."""
        return round(self.int8 - self.fp32, 2)

    def within(self, max_drop: float = MAX_DROP_PT) -> bool:
        return self.delta >= -max_drop

    @property
    def change(self) -> str:
        """e.g. "int8 Δtop-1 −1.15 pt"."""
        return f"int8 Δ{self.metric} {'−' if self.delta < 0 else '+'}{abs(self.delta):.2f} pt"

    def summary(self) -> str:
        """e.g. "int8 Δtop-1 −1.15 pt (77.62 vs fp32 78.77 on 1000 imagenet/val photos not used for calibration)"."""
        return f"{self.change} ({self.int8:.2f} vs fp32 {self.fp32:.2f} on {self.n} {self.data})"

    def to_metadata(self) -> dict[str, str]:
        record = {"metric": self.metric, "unit": "pt", "fp32": self.fp32, "int8": self.int8, "delta": self.delta}
        return {
            META_INT8_ACCURACY: json.dumps({**record, "n": self.n, "data": self.data}),
            META_INT8_DELTA: f"{self.delta:.2f}",
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> Int8Accuracy | None:
        """The record in an ONNX file's metadata; None when there is none. ValueError when it is unreadable."""
        if META_INT8_ACCURACY not in meta:
            return None
        try:
            r = json.loads(meta[META_INT8_ACCURACY])
            return cls(str(r["metric"]), float(r["fp32"]), float(r["int8"]), int(r["n"]), str(r["data"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"unreadable {META_INT8_ACCURACY} record {meta[META_INT8_ACCURACY][:120]!r}: {e}") from e


@dataclass
class ProbeInputs:
    """What a probe gets: the task's name, both exported files (self-contained: the same inference network
    and recipe), the calibration photos (to hold out) and where the labelled photos are (None: shared data)."""

    task: str
    fp32: Path
    int8: Path
    calibration_files: Sequence[Path] = ()
    data: Path | None = None
    count: int = DEFAULT_COUNT
    progress: bool = False


def _evenly(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def _predictors(p: ProbeInputs) -> dict[str, Any]:
    from .load import onnx_predictor

    return {"fp32": onnx_predictor(p.fp32, threads=None), "int8": onnx_predictor(p.int8, threads=None)}


def top1_held_out(p: ProbeInputs) -> Int8Accuracy:
    """Top-1 (%) of both files, through the one inference path, on labelled ImageNet-layout photos not
    used for calibration."""
    from mnet.tasks.classification.data import ImageFolderDataset

    from .deploy import shared_folder

    root = p.data or shared_folder("data", "imagenet")
    if root is None:
        raise NoProbeData("no labelled photos to measure int8 accuracy on (shared/data/imagenet is absent)")
    ds = ImageFolderDataset(root)
    calibration = {Path(f).resolve() for f in p.calibration_files}
    pool = _evenly([(f, y) for f, y in ds.samples if Path(f).resolve() not in calibration], p.count)
    if not pool:
        raise NoProbeData(f"{ds.split_dir}: every photo was a calibration photo; none is left to measure on")
    hits = {}
    for name, predictor in _predictors(p).items():
        hits[name] = sum(predictor.predict_file(f).classes[0].index == y for f, y in pool)
    held_out = "not used for calibration" if calibration else "(no calibration photos given)"
    return Int8Accuracy(
        "top-1",
        round(100 * hits["fp32"] / len(pool), 2),
        round(100 * hits["int8"] / len(pool), 2),
        len(pool),
        f"{ds.split_dir.parent.name}/{ds.split_dir.name} photos {held_out}",
    )


def coco_ap_held_out(p: ProbeInputs, split: str = "val2017") -> Int8Accuracy:
    """COCO AP (× 100) of both files (NMS in each graph) on ``split`` (calibration must be elsewhere)."""
    from mnet.tasks.registry import get_task

    from .deploy import shared_folder

    root = p.data or shared_folder("data", "coco")
    if root is None or not (Path(root) / split).is_dir():
        raise NoProbeData(f"no COCO {split} photos to measure int8 AP on (shared/data/coco is absent)")
    split_dir = (Path(root) / split).resolve()
    if any(split_dir in Path(f).resolve().parents for f in p.calibration_files):
        raise NoProbeData(f"calibration photos come from {split_dir}, the split int8 AP would be measured on")
    ap, n = {}, 0
    for name, predictor in _predictors(p).items():
        result = get_task("detection").evaluate(predictor, root, split=split, progress=p.progress, limit=p.count)
        ap[name], n = round(100 * float(result["AP"]), 2), int(result["n"])
    return Int8Accuracy("AP", ap["fp32"], ap["int8"], n, f"COCO {split} photos (calibration: other photos)")


#: task name → the probe measuring its int8 accuracy change
PROBES: dict[str, Callable[[ProbeInputs], Int8Accuracy]] = {
    "classification": top1_held_out,
    "detection": coco_ap_held_out,
}


def measure_int8_accuracy(inputs: ProbeInputs) -> tuple[Int8Accuracy | None, str]:
    """(the record, "") or (None, why there is none)."""
    probe = PROBES.get(inputs.task)
    if probe is None:
        return None, f"task {inputs.task!r} has no int8 accuracy probe yet"
    try:
        return probe(inputs), ""
    except NoProbeData as e:
        return None, str(e)
