"""One frame in, annotated frame and predictions out; models loaded once per (task, weights)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from mnet.tasks.results import Prediction

from .draw import draw_predictions
from .runners import RUNNERS, Runner

#: the longest side frames are shown and processed at; larger camera frames are resized once
DISPLAY_MAX_SIDE = 640


@dataclass
class FrameResult:
    image: np.ndarray
    predictions: list[Prediction] = field(default_factory=list)
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
    """Holds the loaded runners and runs the chosen tasks on a frame.

    ``choose_weights(task, size)`` maps a task and a backbone size (``"1.0-224"``) to a weights
    entry; ``source`` is passed to the weights loader (a local file or folder, instead of a download).
    """

    def __init__(
        self, choose_weights, *, source: str | None = None, threads: int | None = None, runtime: str = "auto"
    ) -> None:
        self.choose_weights = choose_weights
        self.source = source
        self.runtime = runtime
        self._runners: dict[tuple[str, str], Runner] = {}
        self._lock = threading.Lock()
        if threads:
            torch.set_num_threads(threads)

    def runner(self, task: str, weights: str) -> Runner:
        key = (task, weights)
        with self._lock:
            if key not in self._runners:
                if task not in RUNNERS:
                    raise ValueError(f"the demo has no runner for task {task!r}; available: {', '.join(RUNNERS)}")
                runner = RUNNERS[task](weights, source=self.source, runtime=self.runtime)
                runner(np.zeros((480, 640, 3), np.uint8))  # warm-up: the first pass builds kernels
                self._runners[key] = runner
            return self._runners[key]

    def preload(self, tasks: Sequence[str], size: str) -> None:
        """Load and warm the runners for these tasks now, so the first camera frame is not slow."""
        for task in tasks:
            self.runner(task, self.choose_weights(task, size))

    def process(
        self, frame: np.ndarray, tasks: Sequence[str], size: str, threshold: float = 0.5, *, fps: float | None = None
    ) -> FrameResult:
        t0 = time.perf_counter()
        frame = fit_frame(frame)
        runners = [self.runner(t, self.choose_weights(t, size)) for t in tasks]
        preds: list[Prediction] = []
        model_ms = 0.0
        groups: dict[object, list[Runner]] = {}
        for r in runners:  # runners on the same backbone weights share one backbone pass
            groups.setdefault(r.backbone_key, []).append(r)
        with torch.inference_mode():
            for group in groups.values():
                t1 = time.perf_counter()
                feats = group[0].features(group[0].prepare(frame))
                shared_ms = (time.perf_counter() - t1) * 1e3
                for r in group:
                    t2 = time.perf_counter()
                    pred = r.head(feats, frame.shape[:2], threshold)
                    pred.model_ms = shared_ms + (time.perf_counter() - t2) * 1e3
                    preds.append(pred)
                model_ms += (time.perf_counter() - t1) * 1e3
        status = f"model {model_ms:.0f} ms"
        if fps:
            status += f" | {fps:.1f} FPS"
        out = draw_predictions(frame.copy(), preds, status)
        return FrameResult(out, preds, model_ms, (time.perf_counter() - t0) * 1e3)
