"""Draw predictions on a frame (RGB uint8, in place) with OpenCV."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from mnet.tasks.results import Prediction

FONT = cv2.FONT_HERSHEY_SIMPLEX
#: one colour per task (RGB)
TASK_COLOURS = {
    "classification": (255, 255, 255),
    "dogs": (255, 200, 0),
    "detection": (0, 220, 80),
    "face_attributes": (255, 80, 200),
}


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, bg=(0, 0, 0)) -> int:
    """Text on a filled background box; returns the height used."""
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    x, y = org
    x = max(0, min(x, img.shape[1] - tw - 4))  # keep labels inside the frame
    cv2.rectangle(img, (x, y), (x + tw + 4, y + th + base + 4), bg, -1)
    cv2.putText(img, text, (x + 2, y + th + 2), FONT, scale, colour, thick, cv2.LINE_AA)
    return th + base + 4


def draw_predictions(frame: np.ndarray, predictions: Iterable[Prediction], status: str = "") -> np.ndarray:
    """Boxes with labels and per-box facts, a top-5 panel per classifying task, and a status line."""
    h, w = frame.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    thick = max(1, int(round(scale * 3)))
    y = 4
    for pred in predictions:
        colour = TASK_COLOURS.get(pred.task, (255, 255, 0))
        for det in pred.detections:
            x1, y1, x2, y2 = (int(round(v)) for v in det.box)
            cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thick)
            lines = [f"{det.label.name} {det.label.score:.2f}"]
            props = det.properties
            if "age" in props or "gender" in props:
                lines.append(
                    " ".join(
                        str(v) for v in (props.get("gender", ""), f"{props['age']:.0f}y" if "age" in props else "") if v
                    )
                )
            lines += [f"{a.name} {a.score:.2f}" for a in det.attributes[:3]]
            ty = max(0, y1 - int(22 * scale))
            for line in lines:
                ty += _text(frame, line, (x1, ty), scale * 0.8, (0, 0, 0), bg=colour)
        if pred.labels:
            y += _text(frame, f"{pred.task}:", (4, y), scale, colour)
            for lab in pred.labels[:5]:
                y += _text(frame, f"{lab.score:5.1%} {lab.name}", (4, y), scale * 0.9, colour)
    if status:
        _text(frame, status, (4, h - int(34 * scale) - 4), scale, (255, 255, 0))
    return frame
