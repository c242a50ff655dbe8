"""Demo runner for faces in the wild: one :class:`Detection` per face with age, gender and top attributes."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from mnet.tasks.results import Detection, Label, Prediction

from .runners import Runner


class FaceAttributesRunner(Runner):
    """Face detector (face-api SSD by default) → faceres-deep age/gender (+ attribute weights when given)."""

    task = "face_attributes"

    def __init__(
        self,
        weights: str,
        source: str | None = None,
        runtime: str = "auto",
        *,
        attributes: str | None = None,
        detector: str = "ssd",
        top_k: int = 5,
    ) -> None:
        super().__init__(weights, source, runtime)  # runtime: age/gender + attribute networks; the detector is PyTorch
        from mnet.tasks.face_attributes.pipeline import FacePipeline

        if source is not None:
            from mnet.weights import fetch_and_convert

            fetch_and_convert(weights, source=source)
        self.pipeline = FacePipeline(
            detector=detector, age_gender=weights, attributes=attributes, top_k=top_k, runtime=runtime
        )

    @property
    def backbone_key(self) -> Hashable:
        return ("faces", self.weights)

    def prepare(self, frame: np.ndarray) -> np.ndarray:  # type: ignore[override]
        return frame

    def features(self, x: np.ndarray) -> list:  # type: ignore[override]
        return self.pipeline(x)

    def head(self, feats: list, frame_shape: tuple[int, int], threshold: float) -> Prediction:
        dets = [
            Detection(
                tuple(f.box),
                Label("face", f.score, 1),
                attributes=[Label(n, p) for n, p in f.attributes],
                properties={"age": f.age, "gender": f.gender, "gender_score": f.gender_score},
            )
            for f in feats
            if f.score >= threshold
        ]
        return Prediction(self.task, self.weights, detections=dets)
