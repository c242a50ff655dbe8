"""Network outputs → results: the one function per output kind, in numpy (no torch).

Every inference network (``Task.inference_network``, and the ONNX file ``mnet export`` writes from it)
ends at final values — probabilities, decoded boxes after NMS, ages — under fixed output names, so
what is left after the network is only naming and mapping to the input photo's pixels:

=============  ===================================================  =====================
kind           network outputs (named)                              result
=============  ===================================================  =====================
``classes``    ``probs`` (N, C) softmax                             ranked ``Label`` s
``attributes`` ``probs`` (N, A) one sigmoid each                    ranked ``Label`` s
``age_gender`` ``age`` (N,), ``male`` (N,) probability              age, gender
``boxes``      ``boxes`` (K, 4) xyxy in [0, 1], ``scores`` (K,),    ``Box`` es in pixels
               ``labels`` (K,) 1-based; batch 1; optional           (with ``keypoints``)
               ``landmarks`` (K, P, 2) in [0, 1]
=============  ===================================================  =====================

Every network also outputs ``finite`` (N,): per image, whether its raw outputs (logits; a detector's boxes and scores
before its NMS) were all finite. NaN scores never pass a score threshold and a logit of +inf is a
sigmoid of 1, so broken weights would otherwise look like an empty photo or a confident answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .results import Box, Label

#: output names of each kind's network, in the order the exported graph lists them
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "classes": ("probs",),
    "attributes": ("probs",),
    "age_gender": ("age", "male"),
    "boxes": ("boxes", "scores", "labels"),
}
#: kinds whose network runs one image at a time (their number of detections differs per image)
BATCH_ONE_KINDS = frozenset({"boxes"})


@dataclass(frozen=True)
class Frame:
    """How the network's normalised [0, 1] coordinates map to the input photo's pixels:
    ``pixel = offset + normalised · scale`` per axis, clipped to the photo (``width`` × ``height``)."""

    width: int
    height: int
    ox: float = 0.0
    oy: float = 0.0
    sx: float | None = None
    sy: float | None = None

    def to_pixels(self, xyxy: np.ndarray) -> np.ndarray:
        sx = self.width if self.sx is None else self.sx
        sy = self.height if self.sy is None else self.sy
        out = np.asarray(xyxy, np.float64).reshape(-1, 2) * (sx, sy) + (self.ox, self.oy)
        out[:, 0] = out[:, 0].clip(0, self.width)
        out[:, 1] = out[:, 1].clip(0, self.height)
        return out.reshape(np.shape(xyxy))


class NonFiniteOutputError(ValueError):
    """The network produced NaN or inf: its weights (or input) are broken; never shown as a result."""


def check_outputs(kind: str, outputs: Mapping[str, np.ndarray], model: str = "the model") -> None:
    """Raise unless ``outputs`` has the kind's names and only finite values (errors name ``model``)."""
    missing = [n for n in OUTPUT_NAMES[kind] if n not in outputs]
    if missing:
        raise ValueError(f"{model}: network outputs {sorted(outputs)} lack {missing} (a {kind!r} network)")
    if "finite" in outputs and not np.asarray(outputs["finite"]).all():  # the network's check of its raw outputs
        raise NonFiniteOutputError(
            f"{model}: its {'box and score outputs' if kind == 'boxes' else 'logits'} hold NaN/inf values: "
            "its weights are broken (check the file, or the training run that wrote it)"
        )
    for name, value in outputs.items():
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise NonFiniteOutputError(
                f"{model}: output {name!r} holds {int((~np.isfinite(arr)).sum())} NaN/inf value(s): "
                "its weights are broken (check the file, or the training run that wrote it)"
            )


def _names(labels: Sequence[str] | None, n: int) -> Sequence[str]:
    if labels is None:
        return [str(i) for i in range(n)]
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} network outputs")
    return labels


def ranked(probs: np.ndarray, labels: Sequence[str] | None, top_k: int | None) -> list[list[Label]]:
    """(N, C) probabilities → per row the ``top_k`` (all when None) most probable, best first."""
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2:
        raise ValueError(f"expected (N, C) probabilities, got shape {probs.shape}")
    names = _names(labels, probs.shape[1])
    k = probs.shape[1] if top_k is None else max(1, min(top_k, probs.shape[1]))
    out = []
    for row in probs:
        top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
        top = top[np.argsort(-row[top], kind="stable")]
        out.append([Label(str(names[i]), float(row[i]), int(i)) for i in top])
    return out


def decode_ranked(outputs: Mapping[str, np.ndarray], *, labels=None, top_k=5, **_: Any) -> list[list[Label]]:
    return ranked(outputs["probs"], labels, top_k)


def decode_age_gender(outputs: Mapping[str, np.ndarray], **_: Any) -> list[tuple[float, str, float]]:
    """Per image (age, "male" | "female", confidence in that gender)."""
    return [
        (float(a), "male" if m >= 0.5 else "female", float(max(m, 1.0 - m)))
        for a, m in zip(np.asarray(outputs["age"], np.float64), np.asarray(outputs["male"], np.float64))
    ]


def decode_boxes(
    outputs: Mapping[str, np.ndarray],
    *,
    labels: Sequence[str] | None = None,
    frames: Sequence[Frame],
    score_threshold: float = 0.0,
    **_: Any,
) -> list[list[Box]]:
    """One image's detections (batch-1 network) → ``Box`` es in the photo's pixels, best first."""
    if len(frames) != 1:
        raise ValueError(f"a detection network runs one image at a time, got {len(frames)}")
    boxes = frames[0].to_pixels(np.asarray(outputs["boxes"], np.float64).reshape(-1, 4))
    scores = np.asarray(outputs["scores"], np.float64).reshape(-1)
    classes = np.asarray(outputs["labels"]).reshape(-1).astype(np.int64)
    points = _keypoints(outputs, frames[0], len(boxes))
    return [
        [
            Box(
                tuple(float(v) for v in boxes[i]),
                str(labels[classes[i] - 1]) if labels else str(int(classes[i])),
                float(scores[i]),
                int(classes[i]),
                points[i],
            )
            for i in np.flatnonzero(scores >= score_threshold)
        ]
    ]


def _keypoints(outputs: Mapping[str, np.ndarray], frame: Frame, n: int) -> list[list[tuple[float, float]] | None]:
    """A detector's optional ``landmarks`` (K, P, 2) in [0, 1] → per box P (x, y) points in pixels."""
    if "landmarks" not in outputs:
        return [None] * n
    xy = frame.to_pixels(np.asarray(outputs["landmarks"], np.float64))  # (K, P, 2): pairs of (x, y)
    return [[(float(x), float(y)) for x, y in box] for box in xy]


#: output kind → the function that turns that kind's network outputs into results
DECODERS: dict[str, Callable[..., list[Any]]] = {
    "classes": decode_ranked,
    "attributes": decode_ranked,
    "age_gender": decode_age_gender,
    "boxes": decode_boxes,
}


def decode(kind: str, outputs: Mapping[str, np.ndarray], *, model: str = "the model", **options: Any) -> list[Any]:
    """Check and decode one batch of a ``kind`` network's outputs (see the module's table)."""
    if kind not in DECODERS:
        raise ValueError(f"unknown network output kind {kind!r}; known: {', '.join(DECODERS)}")
    check_outputs(kind, outputs, model)
    return DECODERS[kind](outputs, **options)
