"""The live view: the camera plays in the page at its own frame rate; results are drawn over it.

:func:`live_component` is a Gradio 6 ``gr.HTML`` (``head`` loads ``static/live.js``, onnxruntime-web and the
CSS; ``js_on_load`` mounts it) that owns a ``<video>``, a canvas over it and a status line. Per task, it runs
on one of two engines:

* **this device**: the task's self-contained ONNX export (network + decoding, ``tasks/runtime/onnx.py``)
  runs in the page in onnxruntime-web (WASM SIMD; threads when the page is cross-origin isolated); the
  page only resizes and normalises per the export's ``mnet.preprocess`` and names the outputs;
* **server**: the page sends a frame already downscaled to the model's input (JPEG), only when the previous
  answer is back, and gets :class:`~mnet.tasks.results.Result` JSON back (boxes in the sent frame's pixels).

:class:`LiveBackend` serves both under :data:`PREFIX` (model info, the export files, onnxruntime-web's files,
the inference route); :func:`server_app` mounts the Blocks on a FastAPI app that also sends the COOP/COEP
headers (``?isolate=0`` on the page's URL leaves them out: one thread, as on a host that cannot send them).
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .models import FACE_TASKS
from .pipeline import DISPLAY_MAX_SIDE, DemoPipeline

#: URL prefix of the live view's routes (not ``/static``: that would shadow Gradio's own files)
PREFIX = "/mnet-live"
#: engines a task can run on, in the page's picker
ENGINES = {"auto": "auto (this device where it can)", "device": "this device", "server": "server"}
#: the largest frame the server engine accepts (bytes)
MAX_FRAME_BYTES = 4_000_000
STATIC_FILES = ("live.js", "live.css")


def static_file(name: str) -> Path:
    """One of the live view's page files (package data ``mnet.apps.demo/static``)."""
    if name not in STATIC_FILES:
        raise FileNotFoundError(f"{name}: not a file of the live view")
    return Path(str(resources.files("mnet.apps.demo") / "static" / name))


def send_side(task: str, preprocess: dict[str, Any] | None) -> int:
    """The longest side of the frame the page sends to the server for ``task``: enough pixels that the
    model's own crop still holds its input resolution (faces: the demo's display size, for small faces)."""
    if task in FACE_TASKS or preprocess is None:
        return DISPLAY_MAX_SIDE
    return min(DISPLAY_MAX_SIDE, math.ceil(preprocess["resolution"] / preprocess.get("crop_fraction", 1.0)))


class LiveBackend:
    """What the page asks of the app: which model a (task, size) is, its export file, server inference."""

    def __init__(self, pipeline: DemoPipeline) -> None:
        self.pipeline = pipeline
        self._infos: dict[tuple[str, str], dict[str, Any]] = {}
        self._files: dict[str, Path] = {}  # model id → export file the page may download
        self._lock = threading.Lock()

    def model_info(self, task: str, size: str) -> dict[str, Any]:
        """The page's view of the model a (task, size) runs: name, export URL and size, input recipe, labels,
        output kind, and whether it can run on the device (single-network tasks)."""
        weights = self.pipeline.choose_weights(task, size)
        key = (task, weights)
        with self._lock:
            if key in self._infos:
                return self._infos[key]
        info: dict[str, Any] = {"task": task, "model": Path(weights).name, "device": False, "size_mb": 0.0}
        if self.pipeline.task_of(task) in FACE_TASKS:
            info.update(kind="faces", preprocess=None, labels=None, id=None, url=None)
        else:
            from mnet.tasks.runtime.load import load_predictor

            p = load_predictor(self.pipeline.task_of(task), weights, runtime="onnxruntime", notify=None)
            path = Path(p.session.source)
            mid = path.name
            info.update(
                kind=p.kind,
                preprocess=p.preprocess.to_dict(),
                labels=p.labels,
                id=mid,
                url=f"{PREFIX}/models/{mid}",
                size_mb=round(path.stat().st_size / 1e6, 2),
                device=True,
            )
            with self._lock:
                self._files[mid] = path
        info["send_side"] = send_side(task, info["preprocess"])
        with self._lock:
            self._infos[key] = info
        return info

    def model_file(self, mid: str) -> Path:
        """The export file of a model the page was told about (and no other file)."""
        with self._lock:
            path = self._files.get(mid)
        if path is None or not path.is_file():
            raise FileNotFoundError(f"{mid}: no such model (ask {PREFIX}/model first)")
        return path

    def infer(self, data: bytes, tasks: Sequence[str], size: str, threshold: float) -> dict[str, Any]:
        """A frame (JPEG/PNG bytes, already downscaled by the page) → each task's Result, in its pixels."""
        from PIL import Image, UnidentifiedImageError

        if len(data) > MAX_FRAME_BYTES:
            raise ValueError(f"frame of {len(data):,} bytes is above the {MAX_FRAME_BYTES:,}-byte limit")
        try:
            img = Image.open(io.BytesIO(data))
            img.draft("RGB", (DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE))
            arr = np.asarray(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"the frame is not a readable image: {e}") from None
        if max(arr.shape[:2]) > DISPLAY_MAX_SIDE:
            raise ValueError(f"frame {arr.shape[1]}×{arr.shape[0]} is larger than {DISPLAY_MAX_SIDE} px")
        t0 = time.perf_counter()
        results = self.pipeline.results(arr, list(tasks), size, threshold)
        return {
            "results": [r.to_dict() for r in results],
            "model_ms": round((time.perf_counter() - t0) * 1e3, 2),
            "size": [arr.shape[1], arr.shape[0]],
        }

    def routes(self, app: Any) -> None:
        """Add the live view's routes to a FastAPI app."""
        from fastapi import HTTPException
        from fastapi.responses import FileResponse

        from .web_runtime import ORT_WEB_FILES, ensure_ort_web

        def fail(e: Exception, code: int = 400) -> HTTPException:
            return HTTPException(status_code=code, detail=str(e))

        @app.get(f"{PREFIX}/model")
        def model(task: str, size: str) -> dict[str, Any]:
            try:
                return self.model_info(task, size)
            except (ValueError, KeyError, FileNotFoundError) as e:
                raise fail(e) from None

        @app.get(f"{PREFIX}/models/{{mid}}")
        def model_file(mid: str) -> FileResponse:
            try:
                return FileResponse(self.model_file(mid), media_type="application/octet-stream")
            except FileNotFoundError as e:
                raise fail(e, 404) from None

        @app.get(f"{PREFIX}/ort/{{name}}")
        def ort_file(name: str) -> FileResponse:
            if name not in ORT_WEB_FILES:
                raise HTTPException(status_code=404, detail=f"{name}: not an onnxruntime-web file served here")
            kind = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm"}
            return FileResponse(ensure_ort_web(download=False) / name, media_type=kind[Path(name).suffix])

        @app.get(f"{PREFIX}/static/{{name}}")
        def page_file(name: str) -> FileResponse:
            try:
                path = static_file(name)
            except FileNotFoundError as e:
                raise fail(e, 404) from None
            return FileResponse(path, media_type="text/css" if name.endswith(".css") else "text/javascript")

        @app.post(f"{PREFIX}/infer")
        async def infer(request: _Request, tasks: str, size: str, threshold: float = 0.5) -> dict[str, Any]:
            from starlette.concurrency import run_in_threadpool

            data = await request.body()
            try:
                return await run_in_threadpool(self.infer, data, tasks.split(","), size, threshold)
            except ValueError as e:
                raise fail(e) from None


try:  # FastAPI reads the route's annotations from this module's globals
    from fastapi import Request as _Request
except ImportError:  # pragma: no cover - gradio (and so fastapi) missing: the app cannot start anyway
    _Request = Any


def isolation_middleware(app: Any) -> None:
    """Send ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy: require-corp`` so
    the page is cross-origin isolated (onnxruntime-web's threads need it), unless the page was opened with
    ``?isolate=0``: every sub-resource is same-origin, so Gradio's own page still loads."""

    @app.middleware("http")
    async def isolate(request, call_next):
        response = await call_next(request)
        if request.query_params.get("isolate") != "0":
            response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
            response.headers["Cross-Origin-Embedder-Policy"] = "require-corp"
            response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        return response


def live_component(default_engine: str = "auto") -> Any:
    """The ``gr.HTML`` live view (video, overlay canvas, engine picker, start button, status line)."""
    import gradio as gr

    if default_engine not in ENGINES:
        raise ValueError(f"unknown engine {default_engine!r}; choose one of {', '.join(ENGINES)}")
    options = "".join(
        f'<option value="{k}"{" selected" if k == default_engine else ""}>{v}</option>' for k, v in ENGINES.items()
    )
    html = (
        '<div class="mnet-live"><div class="mnet-bar"><button class="mnet-start lg secondary">Start camera</button>'
        f'<label>engine <select class="mnet-engine">{options}</select></label></div>'
        '<div class="mnet-stage"><video muted playsinline autoplay></video><canvas class="mnet-overlay"></canvas></div>'
        '<div class="mnet-status"></div></div>'
    )
    head = (
        f'<link rel="stylesheet" href="{PREFIX}/static/live.css">'
        f'<script src="{PREFIX}/ort/ort.wasm.min.js"></script>'
        f'<script src="{PREFIX}/static/live.js"></script>'
    )
    return gr.HTML(
        html_template=html,
        head=head,
        js_on_load="window.MnetLive.mount(element);",
        elem_id="live-view",
        apply_default_css=False,
    )


def server_app(blocks: Any, backend: LiveBackend, *, isolate: bool = True, **mount: Any) -> Any:
    """A FastAPI app: the live view's routes, COOP/COEP headers (``isolate``), and the Blocks at ``/``."""
    import gradio as gr
    from fastapi import FastAPI

    app = FastAPI()
    if isolate:
        isolation_middleware(app)
    backend.routes(app)
    return gr.mount_gradio_app(app, blocks, path="/", **mount)


class Served:
    """The app served by uvicorn in a background thread (tests, ``mnet demo``); ``close()`` stops it."""

    def __init__(self, app: Any, host: str, port: int, **uvicorn_kwargs: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", **uvicorn_kwargs)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() - t0 > 60:
                raise RuntimeError(f"the demo server did not start on {host}:{port}")
            time.sleep(0.05)

    def wait(self) -> None:
        self.thread.join()

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
