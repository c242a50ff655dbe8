"""What a task returns for one image: labels, boxes (with per-box attributes), and timings.

Every consumer (the CLI's ``predict``, the demo, its JSON endpoint) reads these, so a new task only
has to fill them in to be drawn and served.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Label:
    """A class (or attribute) with its score in [0, 1]."""

    name: str
    score: float
    index: int = -1


@dataclass
class Detection:
    """A box in pixels of the original image, (x1, y1, x2, y2), with its class and extra facts."""

    box: tuple[float, float, float, float]
    label: Label
    #: per-box attributes, e.g. face attributes sorted by score
    attributes: list[Label] = field(default_factory=list)
    #: per-box scalars, e.g. {"age": 31.5, "gender": "female", "gender_score": 0.93}
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prediction:
    """One task's answer for one image."""

    task: str
    model: str
    labels: list[Label] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    model_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
