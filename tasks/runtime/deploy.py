"""``mnet export`` as a library call: weights → checked ONNX / TorchScript file (optionally int8)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mnet.tasks.base import get_task
from mnet.tasks.data.images import load_rgb

from .export import ExportReport, check_export, dumps_metadata, export_onnx, export_torchscript, write_metadata
from .int8_accuracy import ProbeInputs, measure_int8_accuracy
from .predict import META_LABELS, META_MODEL_KWARGS, META_PREPROCESS, META_TASK, META_WEIGHTS, expand_images
from .quantize import quantize_onnx
from .session import OnnxRuntime

FORMATS = ("onnx", "torchscript")


def shared_folder(*parts: str) -> Path | None:
    """A folder under the suite's shared data (``$MNET_SHARED`` or ``../shared`` next to the repo), if present."""
    root = Path(os.environ.get("MNET_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    path = root.joinpath(*parts)
    return path if path.exists() else None


#: photos the export is checked on when taken from the task's default folder (evenly spread)
DEFAULT_CHECK_COUNT = 8


def default_check_images(task: Any) -> list[Path]:
    folder = shared_folder(*task.check_images)
    if folder is None:
        raise ValueError(
            f"no images to check the export against ({'/'.join(task.check_images)} is not in the "
            f"shared data): pass --check-images FILE_OR_DIR ..."
        )
    return expand_images([folder], limit=DEFAULT_CHECK_COUNT)


def default_calibration_images(task: Any) -> Path:
    folder = shared_folder(*task.calibration_images)
    if folder is None:
        raise ValueError(
            f"no calibration images ({'/'.join(task.calibration_images)} is not in the shared "
            f"data): pass --calibration-images DIR (real photos of the task's domain)"
        )
    return folder


def preprocess_files(
    task: Any, spec: Any, files: Sequence[Path], *, progress: bool = False, desc: str = ""
) -> np.ndarray:
    """Decode and preprocess image files into one float32 (N, 3, H, W) batch."""
    return np.stack(
        [
            task.preprocess(load_rgb(f), spec)
            for f in tqdm(files, desc=desc, unit="img", disable=not progress, leave=False)
        ]
    )


def export_weights(
    weights: str,
    fmt: str,
    out: str | Path,
    *,
    task: str | None = None,
    int8: bool = False,
    check_images: Sequence[str | Path] | None = None,
    calibration_images: Sequence[str | Path] | None = None,
    calibration_count: int = 200,
    calibration_method: str = "minmax",
    with_postprocess: bool = False,
    progress: bool = True,
    accuracy_data: str | Path | None = None,
    accuracy_count: int = 1000,
) -> ExportReport:
    """Build the weights' model, export its network (``Task.export_network``: with ``with_postprocess``,
    the task's postprocessing inside the graph) in ``fmt``, check it against PyTorch on real images
    (default: the task's ``check_images`` folder).

    int8 (ONNX only) calibrates on ``calibration_count`` photos spread evenly over
    ``calibration_images`` (default: the task's ``calibration_images`` folder); its check reports the
    difference (and top-1 agreement) with PyTorch instead of enforcing a tolerance, and the accuracy
    change against fp32 is measured on up to ``accuracy_count`` held-out labelled photos of the task
    (``accuracy_data``, default the shared data; :mod:`tasks.runtime.int8_accuracy`) and written into
    the file's metadata (``mnet.int8_accuracy``), where the per-machine runtime choice reads it.
    """
    from mnet.weights import build_pretrained

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if int8 and fmt != "onnx":
        raise ValueError("--int8 needs --format onnx (int8 runs in ONNX Runtime)")
    if int8 and with_postprocess:
        raise ValueError("--int8 quantizes the network alone: export it without --with-postprocess")
    model, loaded = build_pretrained(weights)
    task_model = model
    if task and task != loaded.task:
        raise ValueError(f"weights {weights!r} are for task {loaded.task!r}, not {task!r}")
    task_obj, spec = get_task(loaded.task), loaded.preprocess
    files = expand_images(check_images) if check_images else default_check_images(task_obj)
    x = preprocess_files(task_obj, spec, files)
    out = Path(out)
    model = task_obj.export_network(model, with_postprocess=with_postprocess)  # image batch in, plain tensors out
    dynamic_batch = getattr(model, "dynamic_batch", True)
    if fmt == "torchscript":
        return export_torchscript(model, out, x, dynamic_batch=dynamic_batch)
    meta = dumps_metadata(
        **{
            META_TASK: loaded.task,
            META_WEIGHTS: str(weights),
            META_PREPROCESS: json.dumps(spec.to_dict()),
            META_LABELS: loaded.labels,
            META_MODEL_KWARGS: loaded.model_kwargs,
        }
    )
    if not int8:
        return export_onnx(model, out, x, metadata=meta, dynamic_batch=dynamic_batch)
    fp32_path = out.with_name(out.stem + ".fp32.onnx")
    export_onnx(model, fp32_path, x, metadata=meta)
    cal_files = expand_images(calibration_images or [default_calibration_images(task_obj)], limit=calibration_count)
    cal = preprocess_files(task_obj, spec, cal_files, progress=progress, desc="calibration images")
    quantize_onnx(fp32_path, out, (cal[i : i + 16] for i in range(0, len(cal), 16)), method=calibration_method)
    try:
        report = check_export(model, OnnxRuntime(out), x, path=out, fmt="onnx int8", rtol=None)
        probe = ProbeInputs(
            task_obj,
            task_model,
            spec,
            OnnxRuntime(fp32_path),
            OnnxRuntime(out),
            calibration_files=cal_files,
            data=Path(accuracy_data) if accuracy_data else None,
            count=accuracy_count,
            progress=progress,
        )
        record, why = measure_int8_accuracy(probe)
    finally:
        fp32_path.unlink()
    if record is None:
        return replace(report, int8_accuracy=f"no int8 accuracy record ({why}): the runtime choice keeps fp32")
    write_metadata(out, record.to_metadata())
    return replace(report, int8_accuracy=record.summary())
