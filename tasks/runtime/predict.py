"""Image files in, task results out: decode → preprocess → runtime → postprocess (``mnet predict``).

The ONNX Runtime path stays in numpy/PIL end to end: JPEGs decode at a reduced scale when the
photo is much larger than the model input (PIL draft mode), one crop + one resize, a numpy
normalisation, the session, then the task's numpy postprocessing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnet.tasks.base import Task, get_task
from mnet.tasks.data.images import load_rgb

from .session import OnnxRuntime, Runtime, make_runtime, open_runtime

#: file suffixes treated as images when a folder is given
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
#: metadata keys written by ``mnet export`` so an exported file predicts on its own
META_TASK, META_PREPROCESS, META_LABELS, META_WEIGHTS = "mnet.task", "mnet.preprocess", "mnet.labels", "mnet.weights"
#: the task model's build keywords (``Task.build_model``): rebuilds what ``Task.with_network`` needs (SSD config)
META_MODEL_KWARGS = "mnet.model_kwargs"

STAGES = ("decode", "preprocess", "model", "postprocess")


@dataclass
class Predictor:
    """A task, a runtime and the weights' preprocessing and labels, ready for image files."""

    task: Task
    runtime: Runtime
    preprocess: Callable[[Image.Image], Any]
    resolution: int
    labels: list[str] | None = None
    #: keywords for ``task.postprocess`` (``Task.postprocess_options``: e.g. detection's NMS settings)
    options: dict[str, Any] = field(default_factory=dict)
    #: accumulated seconds per stage (decode, preprocess, model, postprocess) and images seen
    timings: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    def draft_size(self) -> tuple[int, int]:
        """Smallest decode size that still leaves the crop at least ``resolution`` pixels."""
        side = math.ceil(self.resolution / getattr(self.preprocess, "crop_fraction", 1.0))
        return side, side

    def predict_files(self, paths: Sequence[str | Path], *, top_k: int = 5) -> list[dict[str, Any]]:
        """One result per file (in order), each with ``"image"``, its ``"size"`` and the task's output."""
        out = []
        for path in paths:
            t0 = time.perf_counter()
            img = load_rgb(path, draft=self.draft_size())
            t1 = time.perf_counter()
            x = self.task.preprocess(img, self.preprocess)[None]
            t2 = time.perf_counter()
            y = self.runtime.run(x)
            t3 = time.perf_counter()
            (result,) = self.task.postprocess(
                y, labels=self.labels, top_k=top_k, image_sizes=[img.size], **self.options
            )
            t4 = time.perf_counter()
            for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                self.timings[stage].append(dt)
            out.append({"image": str(path), **result})
        return out

    def timing_summary(self) -> dict[str, float]:
        """Median milliseconds per image for each stage, their total, and the overhead over the model."""
        med = {s: float(np.median(v)) * 1e3 for s, v in self.timings.items() if v}
        if not med:
            return {}
        total = float(np.median([sum(t) for t in zip(*(self.timings[s] for s in STAGES))])) * 1e3
        return {
            **{f"{s}_ms": v for s, v in med.items()},
            "total_ms": total,
            "overhead_over_model": total / med["model"] - 1.0,
        }


def expand_images(inputs: Iterable[str | Path], *, limit: int | None = None) -> list[Path]:
    """Files as given, folders expanded (recursively, sorted) to their image files; errors name the path.

    With ``limit``, an evenly spaced subset (deterministic) of that many files."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such image file or folder")
    if not files:
        raise ValueError(f"no image files found in {', '.join(map(str, inputs))}")
    if limit is not None and len(files) > limit:
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    return files


@dataclass
class Loaded:
    """A runnable model with what inference needs: its task, input recipe and class labels.

    ``runtime`` runs the task's network (``Task.network``: numpy in, numpy out, what ``mnet predict``
    postprocesses); ``model`` is the whole task model on that runtime (``Task.with_network``: what
    ``Task.evaluate`` takes); ``options`` are ``Task.postprocess_options`` for ``Task.postprocess``."""

    runtime: Runtime
    task: str
    preprocess: Any  # weights.Preprocess
    labels: list[str] | None
    weights: str | None
    model: Any = None
    options: dict[str, Any] = field(default_factory=dict)


def _skeleton(task: Task, kwargs_json: str | None, source: str) -> Any:
    """An untrained model of the build an exported file records (``mnet.model_kwargs``): the config that
    ``Task.with_network`` and ``Task.postprocess_options`` read (e.g. SSD's NMS settings); None if unrecorded."""
    if kwargs_json is None:
        return None
    try:
        return task.build_model(**json.loads(kwargs_json)).eval()
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{source}: its recorded model build {kwargs_json[:200]} is not a {task.name} model: {e}"
        ) from e


def load_for_inference(
    weights: str | None, *, task: str | None = None, runtime: str = "auto", threads: int | None = None
) -> Loaded:
    """Weights name / ``.safetensors`` (built in PyTorch, run in ``runtime``), or an exported ``.onnx`` /
    TorchScript file (which fixes the runtime; task and preprocessing come from its metadata). Without
    weights: the task's model with random weights at 1.0-224, for speed checks only."""
    from mnet.weights import Preprocess, build_pretrained

    if weights and Path(weights).suffix in (".onnx", ".pt", ".ts", ".torchscript"):
        rt = open_runtime(weights, threads=threads)
        if runtime not in ("auto", rt.name):
            raise ValueError(f"{weights}: an exported {Path(weights).suffix} file runs in {rt.name}, not {runtime}")
        meta = rt.metadata if isinstance(rt, OnnxRuntime) else {}
        if META_PREPROCESS not in meta:
            raise ValueError(f"{weights}: no task/preprocessing recorded in the file; export it with `mnet export`")
        saved_task = meta.get(META_TASK)
        if task and saved_task and task != saved_task:
            raise ValueError(f"{weights}: exported for task {saved_task!r}, not {task!r}")
        labels = json.loads(meta[META_LABELS]) if META_LABELS in meta else None
        spec = Preprocess.from_dict(json.loads(meta[META_PREPROCESS]))
        task_obj = get_task(saved_task or task)
        skeleton = _skeleton(task_obj, meta.get(META_MODEL_KWARGS), weights)
        try:
            model = task_obj.with_network(skeleton, rt)
        except ValueError as e:
            raise ValueError(f"{weights}: {e}") from e
        return Loaded(rt, task_obj.name, spec, labels, weights, model, task_obj.postprocess_options(skeleton))
    if weights:
        model, w = build_pretrained(weights)
        if task and w.task != task:
            raise ValueError(f"weights {weights!r} are for task {w.task!r}, not {task!r}")
        task, spec, labels = w.task, w.preprocess, w.labels
    else:
        if not task:
            raise ValueError("give a task, --weights, or both")
        spec, labels = Preprocess(224), None
        model = get_task(task).build_model(alpha=1.0, resolution=224)
    task_obj = get_task(task)
    rt = make_runtime(task_obj.network(model.eval()), runtime, resolution=spec.resolution, threads=threads)
    return Loaded(
        rt, task, spec, labels, weights, task_obj.with_network(model, rt), task_obj.postprocess_options(model)
    )


def build_predictor(
    task: str | None, weights: str | None = None, *, runtime: str = "auto", threads: int | None = None
) -> Predictor:
    """A :class:`Predictor` for :func:`load_for_inference`'s model."""
    m = load_for_inference(weights, task=task, runtime=runtime, threads=threads)
    return Predictor(get_task(m.task), m.runtime, m.preprocess, m.preprocess.resolution, m.labels, m.options)
