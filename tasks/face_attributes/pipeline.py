"""Faces in the wild: detect → crop each face (square, with margin) → age/gender and attributes per face.

Three networks on the one inference path (:class:`~mnet.tasks.inference.Predictor`, any session): a face
detector (``ssd``: the face-api.js SSD-MobileNetV1, the default; ``retinaface``: RetinaFace
MobileNet-0.25, which also gives 5 landmarks), the imported faceres-deep age/gender model, and the
suite's CelebA attribute model. This module needs no torch: with exported networks it runs on ONNX
Runtime alone (``mnet.tasks.runtime.load.load_face_pipeline`` builds one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..inference import Predictor, as_rgb
from ..results import Face, Result
from .pretrained import ENTRY

#: detector name → its weights entry
FACE_DETECTORS: dict[str, str] = {
    "ssd": "ssd_mobilenet_v1_1.0_512.faceapi_faces",
    "retinaface": "retinaface_mobilenet_v1_0.25_640.biubug6_widerface",
}
AGE_GENDER_WEIGHTS = "faceres_mobilenet_v1_1.0_224.age_gender"
#: the suite's CelebA attribute model (``mnet.tasks.face_attributes.pretrained``)
ATTRIBUTE_WEIGHTS = ENTRY
#: margin of the attribute crops: CelebA's training input (the aligned image's central square) is the SSD's
#: face box grown by ~0.34 of its size per side (median over the CelebA val/test faces); age/gender keeps 0.1
ATTRIBUTE_MARGIN = 0.3


def crop_square(img: Image.Image, box: tuple[float, float, float, float], margin: float) -> Image.Image:
    """The square around ``box`` (x1, y1, x2, y2) grown by ``margin`` of its longer side on each side
    (outside the photo: black), as the face models were trained on."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return img.crop((round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)))


@dataclass
class FacePipeline:
    """``pipeline.predict(image)`` → a :class:`Result` whose ``faces`` each carry box, score, age, gender
    and the ``top_k`` most probable attributes; no face found → an empty list."""

    detector: Predictor
    age_gender: Predictor | None = None
    attributes: Predictor | None = None
    margin: float = 0.1
    attribute_margin: float = ATTRIBUTE_MARGIN
    top_k: int = 5
    #: seconds per stage per image (``detect``, ``faces``: the age/gender and attribute networks)
    timings: dict[str, list[float]] = field(default_factory=lambda: {"detect": [], "faces": []})

    def __post_init__(self) -> None:
        if self.detector.kind != "boxes":
            raise ValueError(f"{self.detector.model}: not a face detector (it outputs {self.detector.kind!r})")
        for p, kind in ((self.age_gender, "age_gender"), (self.attributes, "attributes")):
            if p is not None and p.kind != kind:
                raise ValueError(f"{p.model}: expected {kind} weights for faces, got a {p.task} {p.kind!r} model")

    @property
    def model(self) -> str:
        return " + ".join(p.model for p in (self.detector, self.age_gender, self.attributes) if p is not None)

    @property
    def runtime(self) -> str:
        return self.detector.runtime

    def _batch(self, predictor: Predictor, crops: list[Image.Image]) -> np.ndarray:
        return np.stack([predictor.preprocess.to_array(c) for c in crops])

    def predict(
        self, image: Image.Image | np.ndarray, *, name: str | None = None, score_threshold: float = 0.0
    ) -> Result:
        img = as_rgb(image)
        t0 = time.perf_counter()
        found = self.detector.predict(img, score_threshold=score_threshold)
        t1 = time.perf_counter()
        faces = [Face(b.box, b.score, landmarks=b.keypoints) for b in found.boxes or []]
        if faces:
            if self.age_gender is not None:
                crops = [crop_square(img, f.box, self.margin) for f in faces]
                x = self._batch(self.age_gender, crops)
                for f, (age, gender, conf) in zip(faces, self.age_gender.decoded(x, [])):
                    f.age, f.gender, f.gender_score = age, gender, conf
            if self.attributes is not None:
                crops = [crop_square(img, f.box, self.attribute_margin) for f in faces]
                x = self._batch(self.attributes, crops)
                for f, ranked in zip(faces, self.attributes.decoded(x, [], top_k=self.top_k)):
                    f.attributes = list(ranked)
        t2 = time.perf_counter()
        self.timings["detect"].append(t1 - t0)
        self.timings["faces"].append(t2 - t1)
        result = Result("face_attributes", self.model, img.size, name, faces=faces)
        result.timings_ms = {"detect": (t1 - t0) * 1e3, "faces": (t2 - t1) * 1e3}
        return result

    def timing_summary(self) -> dict[str, float]:
        """Median milliseconds per image: face detection, the face networks, and both."""
        if not self.timings["detect"]:
            return {}
        both = [a + b for a, b in zip(self.timings["detect"], self.timings["faces"])]
        return {
            "detect_ms": float(np.median(self.timings["detect"])) * 1e3,
            "faces_ms": float(np.median(self.timings["faces"])) * 1e3,
            "total_ms": float(np.median(both)) * 1e3,
        }

    def predict_file(self, path: str | Path, *, score_threshold: float = 0.0) -> Result:
        from ..data.images import load_rgb

        return self.predict(
            load_rgb(path), name=str(path), score_threshold=score_threshold
        )  # full size: faces are small
