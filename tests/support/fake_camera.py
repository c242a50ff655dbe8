"""Turn a real video into a Y4M file that Chromium plays as its fake camera."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def video_to_y4m(
    src: str | Path, dst: str | Path, *, size: tuple[int, int] = (640, 480), frames: int = 150, fps: int = 10
) -> Path:
    """Write the first ``frames`` frames of ``src`` at ``size`` as YUV4MPEG2 (4:2:0), which Chromium's
    ``--use-file-for-fake-video-capture`` loops."""
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise ValueError(f"{src}: cannot open video")
    w, h = size
    dst = Path(dst)
    with dst.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        n = 0
        while n < frames:
            ok, frame = cap.read()
            if not ok:
                break
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
            yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
            f.write(b"FRAME\n")
            f.write(np.ascontiguousarray(yuv).tobytes())
            n += 1
    cap.release()
    if n == 0:
        raise ValueError(f"{src}: no frames decoded")
    return dst
