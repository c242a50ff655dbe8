"""What the suite answers for one image: one result type per kind, shared by every consumer.

``mnet predict`` (text and JSON), ``mnet faces``, ``mnet eval``, the demo (drawing and its ``/predict``
endpoint) and the benchmarks all read a :class:`Result`. Three kinds of answer, one field each:

* ``classes``: ranked :class:`Label` s (classification, Stanford Dogs);
* ``boxes``: :class:`Box` es in the input photo's pixels (detection);
* ``faces``: :class:`Face` s, each a box with age, gender and named attributes (faces in the wild).

Plain dataclasses: no numpy or torch, so the light inference path imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _r(v: float, nd: int = 4) -> float:
    return round(float(v), nd)


@dataclass
class Label:
    """A class or an attribute with its probability in [0, 1]; ``index`` is its row in the model's output."""

    label: str
    score: float
    index: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": _r(self.score), "index": self.index}


@dataclass
class Box:
    """An object: (x1, y1, x2, y2) in pixels of the input photo, its class and score."""

    box: tuple[float, float, float, float]
    label: str
    score: float
    index: int = -1
    #: points on the object in pixels, when the detector gives them (RetinaFace: eyes, nose, mouth corners)
    keypoints: list[tuple[float, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"box": [_r(v, 1) for v in self.box], "label": self.label, "score": _r(self.score), "index": self.index}
        if self.keypoints is not None:
            d["keypoints"] = [[_r(x, 1), _r(y, 1)] for x, y in self.keypoints]
        return d


@dataclass
class Face:
    """A face: box in pixels of the input photo, detector score, and what the face models say of it."""

    box: tuple[float, float, float, float]
    score: float
    age: float | None = None
    gender: str | None = None  # "male" | "female"
    gender_score: float | None = None  # confidence in ``gender``
    #: the most probable attributes, most probable first (``Label.label`` is the CelebA attribute name)
    attributes: list[Label] = field(default_factory=list)
    landmarks: list[tuple[float, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"box": [_r(v, 1) for v in self.box], "score": _r(self.score)}
        if self.age is not None:
            d.update(age=_r(self.age, 1), gender=self.gender, gender_score=_r(self.gender_score or 0.0))
        d["attributes"] = [a.to_dict() for a in self.attributes]
        if self.landmarks is not None:
            d["landmarks"] = [[_r(x, 1), _r(y, 1)] for x, y in self.landmarks]
        return d


@dataclass
class Result:
    """One task's answer for one image. ``size`` is the input photo's (width, height): boxes are in it."""

    task: str
    model: str
    size: tuple[int, int]
    image: str | None = None
    classes: list[Label] | None = None
    boxes: list[Box] | None = None
    faces: list[Face] | None = None
    #: milliseconds per stage (decode, preprocess, model, postprocess), when measured
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return next((k for k in ("classes", "boxes", "faces") if getattr(self, k) is not None), "none")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"image": self.image} if self.image is not None else {}
        d.update(task=self.task, model=self.model, size=list(self.size))
        for kind in ("classes", "boxes", "faces"):
            items = getattr(self, kind)
            if items is not None:
                d[kind] = [item.to_dict() for item in items]
        return d

    def scaled(self, sx: float, sy: float, size: tuple[int, int]) -> Result:
        """The same result for the photo resized by (sx, sy) to ``size``: boxes and landmarks scaled."""

        def box(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
            return (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)

        out = Result(self.task, self.model, size, self.image, self.classes, timings_ms=dict(self.timings_ms))
        if self.boxes is not None:
            out.boxes = [
                Box(
                    box(b.box),
                    b.label,
                    b.score,
                    b.index,
                    None if b.keypoints is None else [(x * sx, y * sy) for x, y in b.keypoints],
                )
                for b in self.boxes
            ]
        if self.faces is not None:
            out.faces = [
                Face(
                    box(f.box),
                    f.score,
                    f.age,
                    f.gender,
                    f.gender_score,
                    f.attributes,
                    None if f.landmarks is None else [(x * sx, y * sy) for x, y in f.landmarks],
                )
                for f in self.faces
            ]
        return out
