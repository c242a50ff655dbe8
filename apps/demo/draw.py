"""Draw predictions on a frame (RGB uint8, in place) with OpenCV."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from mnet.tasks.results import Result

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


def _box(frame: np.ndarray, box, colour, thick: int, lines: list[str], scale: float) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thick)
    ty = max(0, y1 - int(22 * scale))
    for line in lines:
        ty += _text(frame, line, (x1, ty), scale * 0.8, (0, 0, 0), bg=colour)


def draw_results(frame: np.ndarray, results: Iterable[Result], status: str = "") -> np.ndarray:
    """Boxes with labels, faces with age/gender/attributes, a top-5 panel per classifying task, and a
    status line. Results must be in the frame's pixels (``Result.scaled`` maps them)."""
    h, w = frame.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    thick = max(1, int(round(scale * 3)))
    y = 4
    for r in results:
        colour = TASK_COLOURS.get(r.task, (255, 255, 0))
        for b in r.boxes or []:
            _box(frame, b.box, colour, thick, [f"{b.label} {b.score:.2f}"], scale)
        for f in r.faces or []:
            lines = [f"face {f.score:.2f}"]
            if f.age is not None:
                lines.append(f"{f.gender} {f.age:.0f}y")
            lines += [f"{a.label} {a.score:.2f}" for a in f.attributes[:3]]
            _box(frame, f.box, colour, thick, lines, scale)
        if r.classes:
            y += _text(frame, f"{r.task}:", (4, y), scale, colour)
            for c in r.classes[:5]:
                y += _text(frame, f"{c.score:5.1%} {c.label}", (4, y), scale * 0.9, colour)
    if status:
        _text(frame, status, (4, h - int(34 * scale) - 4), scale, (255, 255, 0))
    return frame
