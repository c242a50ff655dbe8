"""The Gradio 6 app: a live camera tab (:mod:`.live`), an upload tab, and a JSON ``/predict`` endpoint."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnet.tasks.data import ImageDecodeError, load_rgb
from mnet.tasks.data.images import decode_bytes, read_header
from mnet.tasks.results import Result

from .draw import draw_results
from .pipeline import DISPLAY_MAX_SIDE, DemoPipeline

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
#: uploads above this many bytes are refused: by Gradio at the upload route (``launch(max_file_size=...)``,
#: see :data:`LAUNCH_LIMITS`) and again by :func:`read_upload`
MAX_UPLOAD_BYTES = 50_000_000
#: what ``launch`` needs for the limits above
LAUNCH_LIMITS = {"max_file_size": MAX_UPLOAD_BYTES}
#: uploads whose decode is estimated above this many bytes decode one at a time, and memory is handed back
#: to the OS after each, so concurrent big uploads cannot stack their peaks
BIG_DECODE_BYTES = 64_000_000
_big_decodes = threading.BoundedSemaphore(1)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_memory() -> None:
    """Collect garbage and ask glibc to return freed heap pages to the OS (``malloc_trim(0)``): after a big
    decode, the freed buffers would otherwise stay in the process's arenas and its RSS stay high."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def read_upload(path: str | Path, max_side: int = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """An uploaded photo → (RGB array whose longest side is at most ``max_side``, the photo's own (w, h)).

    Size-limited (:data:`MAX_UPLOAD_BYTES`), decoded by the capped loader (``tasks.data.load_rgb``:
    JPEGs at a reduced scale, others shrunk before colour conversion, refused beyond its memory cap);
    big decodes run one at a time and hand their memory back."""
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    if size > MAX_UPLOAD_BYTES:
        raise ImageDecodeError(f"{path}: {size:,} bytes, above the {MAX_UPLOAD_BYTES:,}-byte upload limit")
    header = read_header(path)
    big = decode_bytes(header.size, header.mode) > BIG_DECODE_BYTES
    with _big_decodes if big else contextlib.nullcontext():
        try:
            img = load_rgb(path, max_side=max_side)
            arr = np.asarray(img)
            del img
        finally:
            if big:
                release_memory()
    return arr, header.size


def predictions_json(results: Sequence[Result], image_size: tuple[int, int], total_ms: float) -> dict[str, Any]:
    """The ``/predict`` answer: one result per task, every box in the uploaded photo's pixels."""
    return {
        "image_size": list(image_size),
        "total_ms": round(total_ms, 2),
        "results": [r.to_dict() for r in results],
    }


def build_app(
    pipeline: DemoPipeline,
    *,
    tasks: Sequence[str],
    sizes: Sequence[str],
    default_tasks: Sequence[str],
    default_size: str,
    samples: str | Path | None = None,
    default_engine: str = "auto",
):
    """The Blocks: task / size / threshold controls, the live camera view (:mod:`.live`; its routes come
    with :func:`~mnet.apps.demo.live.server_app`), the upload tab and the ``/predict`` endpoint."""
    import gradio as gr

    from .live import live_component

    def on_upload(upload, chosen, size, threshold):
        # preprocess=False: Gradio hands over the uploaded file unread, so that a text file, a
        # truncated JPEG or a huge image reaches our decoder and gets a message instead of a crash
        path = upload.get("path") if isinstance(upload, dict) else upload
        if not path:
            raise gr.Error("Upload an image first.")
        t0 = time.perf_counter()
        try:
            img, photo_size = read_upload(path)
        except ImageDecodeError as e:
            # name the file as the user knows it, not by Gradio's temporary path
            raise gr.Error(f"Cannot read the upload: {str(e).replace(str(path), Path(path).name)}") from None
        try:  # decoded at most DISPLAY_MAX_SIDE: the results come back in the photo's pixels
            results = pipeline.results(img, chosen or [], size, threshold)
        except ValueError as e:
            raise gr.Error(str(e)) from None
        drawn = draw_results(img.copy(), results)
        results = [r.scaled(photo_size[0] / img.shape[1], photo_size[1] / img.shape[0], photo_size) for r in results]
        return drawn, predictions_json(results, photo_size, (time.perf_counter() - t0) * 1e3)

    with gr.Blocks(title="MobileNet suite", delete_cache=(300, 600)) as app:
        gr.Markdown(
            "# MobileNet suite — live demo\nOne MobileNetV1 backbone, several task heads. "
            "Pick tasks and a backbone size (α-ρ); allow the camera, or upload a photo."
        )
        with gr.Row():
            # the live view reads these three from the page (elem_id): keep the ids
            chosen = gr.CheckboxGroup(list(tasks), value=list(default_tasks), label="tasks", elem_id="tasks-picker")
            size = gr.Dropdown(list(sizes), value=default_size, label="backbone size (α-ρ)", elem_id="size-picker")
            threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="score threshold", elem_id="threshold-picker")
        with gr.Tab("Camera"):
            live_component(default_engine)
        with gr.Tab("Upload"):
            with gr.Row():
                upload = gr.Image(
                    sources=["upload", "clipboard"], type="filepath", label="photo", elem_id="upload-input"
                )
                annotated = gr.Image(label="annotated", format="jpeg", elem_id="upload-output")
            run = gr.Button("Run", variant="primary", elem_id="run-button")
            result = gr.JSON(label="predictions", elem_id="upload-json")
            run.click(
                on_upload,
                [upload, chosen, size, threshold],
                [annotated, result],
                api_name="predict",
                concurrency_limit=4,
                preprocess=False,
            )
            if samples and Path(samples).is_dir():
                paths = sorted(str(p) for p in Path(samples).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if paths:
                    gr.Examples([[p] for p in paths], inputs=[upload], label="example photos")
    return app


def default_tasks_for(tasks: Sequence[str]) -> list[str]:
    """Detection when it is available (boxes on people are the clearest live result), else the first."""
    return ["detection"] if "detection" in tasks else list(tasks[:1])


def serve(
    blocks: Any,
    pipeline: DemoPipeline,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    isolate: bool = True,
    samples: str | Path | None = None,
    ssl: dict[str, Any] | None = None,
) -> Any:
    """Serve the Blocks with the live view's routes (and COOP/COEP headers when ``isolate``) on uvicorn in a
    background thread; returns a :class:`~mnet.apps.demo.live.Served` (``.wait()``, ``.close()``)."""
    from .live import LiveBackend, Served, server_app

    blocks.queue(default_concurrency_limit=4)
    app = server_app(
        blocks,
        LiveBackend(pipeline),
        isolate=isolate,
        allowed_paths=[str(samples)] if samples else None,
        max_file_size=MAX_UPLOAD_BYTES,
    )
    return Served(app, host, port, **(ssl or {}))
