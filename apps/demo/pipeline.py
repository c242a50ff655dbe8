"""One frame in, annotated frame and results out, through the suite's one inference path.

Each (task, weights) is loaded once as a :class:`~mnet.tasks.inference.Predictor` (or the faces
pipeline) on the chosen runtime and reused for every frame; results are :class:`~mnet.tasks.results.Result`
s, boxes in the pixels of the image given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from mnet.tasks.results import Result

from .draw import draw_results
from .models import FACE_TASKS

#: the longest side frames are shown and processed at; larger camera frames are resized once
DISPLAY_MAX_SIDE = 640


@dataclass
class FrameResult:
    image: np.ndarray
    results: list[Result] = field(default_factory=list)
    model_ms: float = 0.0
    total_ms: float = 0.0


def fit_frame(frame: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """Validate an RGB(A)/gray uint8 frame and shrink it (one resize) so its longest side ≤ ``max_side``."""
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3):
        raise ValueError(
            f"expected an image array (H, W[, C]), got {type(frame).__name__} {getattr(frame, 'shape', '')}"
        )
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGBA2RGB)
    elif frame.shape[2] != 3:
        raise ValueError(f"expected 1, 3 or 4 channels, got {frame.shape[2]}")
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    h, w = frame.shape[:2]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        frame = cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame)


class DemoPipeline:
    """Loaded predictors per (task, weights), and one call per frame for the chosen tasks.

    ``choose_weights(task, size)`` maps a task and a backbone size (``"1.0-224"``) to a weights entry."""

    def __init__(
        self, choose_weights: Callable[[str, str], str], *, runtime: str = "auto", threads: int | None = None
    ) -> None:
        self.choose_weights = choose_weights
        self.runtime = runtime
        self.threads = threads
        self._predictors: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def predictor(self, task: str, weights: str) -> Any:
        from mnet.tasks.runtime.load import load_face_pipeline, load_predictor

        key = (task, weights)
        task = self.task_of(task)
        with self._lock:
            if key not in self._predictors:
                if task in FACE_TASKS:
                    p = load_face_pipeline(attributes=weights, runtime=self.runtime, threads=self.threads)
                else:
                    p = load_predictor(task, weights, runtime=self.runtime, threads=self.threads)
                p.predict(np.zeros((480, 640, 3), np.uint8))  # warm-up: the first run builds kernels
                self._predictors[key] = p
            return self._predictors[key]

    def task_of(self, choice: str) -> str:
        """The task a picker entry runs (``choose_weights.task_of`` when it has own models)."""
        task_of = getattr(self.choose_weights, "task_of", None)
        return task_of(choice) if task_of else choice

    def preload(self, tasks: Sequence[str], size: str) -> None:
        """Load and warm the predictors for these tasks now, so the first camera frame is not slow."""
        for task in tasks:
            self.predictor(task, self.choose_weights(task, size))

    def results(self, image: np.ndarray, tasks: Sequence[str], size: str, threshold: float = 0.5) -> list[Result]:
        """Each chosen task's :class:`Result` for an RGB uint8 image, boxes in its pixels."""
        out = []
        for task in tasks:
            p = self.predictor(task, self.choose_weights(task, size))
            t0 = time.perf_counter()
            r = p.predict(image, score_threshold=threshold)
            r.task = task  # the picker's name (an own model's entry), which the page keys results by
            r.timings_ms["total"] = (time.perf_counter() - t0) * 1e3
            out.append(r)
        return out

    def process(
        self, frame: np.ndarray, tasks: Sequence[str], size: str, threshold: float = 0.5, *, fps: float | None = None
    ) -> FrameResult:
        """A camera frame (any size) → shrunk for display, the tasks run on it, results drawn."""
        t0 = time.perf_counter()
        frame = fit_frame(frame)
        results = self.results(frame, tasks, size, threshold)
        model_ms = sum(r.timings_ms["total"] for r in results)
        status = f"model {model_ms:.0f} ms" + (f" | {fps:.1f} FPS" if fps else "")
        out = draw_results(frame.copy(), results, status)
        return FrameResult(out, results, model_ms, (time.perf_counter() - t0) * 1e3)
