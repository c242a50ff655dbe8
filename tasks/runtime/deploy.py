"""``mnet export`` as a library call: weights → a self-contained, checked ONNX file (optionally int8),
or TorchScript.

The file holds the task's whole inference network — the convolutions *and* the decoding (softmax,
sigmoids, SSD box decoding and NMS, face priors and NMS) — and its metadata carries the task, output
kind, input recipe and labels, so any ONNX consumer needs only resize + normalise before it and drawing
after it. It is checked against PyTorch on real photos before it is kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..data.images import load_rgb
from ..inference import expand_images
from .load import export_pretrained, load_pretrained, weights_task

FORMATS = ("onnx", "torchscript")
#: photos the export is checked on when taken from the task's default folder (evenly spread)
DEFAULT_CHECK_COUNT = 8


def shared_folder(*parts: str) -> Path | None:
    """A folder under the suite's shared data (``$MNET_SHARED`` or ``../shared`` next to the repo), if present."""
    root = Path(os.environ.get("MNET_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    path = root.joinpath(*parts)
    return path if path.exists() else None


def default_check_images(task: Any) -> list[Path]:
    folder = shared_folder(*task.check_images)
    if folder is None:
        raise ValueError(
            f"no photos to check the export on ({'/'.join(task.check_images)} is not in the shared data): "
            "pass --check-images FILE_OR_DIR ..."
        )
    return expand_images([folder], limit=DEFAULT_CHECK_COUNT)


def default_calibration_images(task: Any) -> Path:
    folder = shared_folder(*task.calibration_images)
    if folder is None:
        raise ValueError(
            f"no calibration photos ({'/'.join(task.calibration_images)} is not in the shared data): "
            "pass --calibration-images DIR (real photos of the task's domain)"
        )
    return folder


def preprocess_files(spec: Any, files: Sequence[Path], *, progress: bool = False, desc: str = "") -> np.ndarray:
    """Decode and preprocess image files into one float32 (N, 3, H, W) batch."""
    return np.stack(
        [spec.to_array(load_rgb(f)) for f in tqdm(files, desc=desc, unit="img", disable=not progress, leave=False)]
    )


def _cache_target(task: str, weights: str, int8: bool) -> Path:
    """The cached export of ``weights`` for ``task`` (made first when missing), or its int8 sibling."""
    from .load import cached_export, int8_sibling

    fp32 = cached_export(task, weights, notify=None)  # converts and exports when needed
    return int8_sibling(fp32) if int8 else fp32


def _refuse_own_input(weights: str, out: Path) -> None:
    src = Path(weights)
    if src.exists() and out.exists() and src.resolve() == out.resolve():
        raise ValueError(f"{out}: the output would overwrite the input weights; choose another --out")


def export_weights(
    weights: str,
    fmt: str,
    out: str | Path | None,
    *,
    task: str | None = None,
    int8: bool = False,
    check_images: Sequence[str | Path] | None = None,
    calibration_images: Sequence[str | Path] | None = None,
    calibration_count: int = 200,
    calibration_method: str = "minmax",
    overwrite: bool = False,
    progress: bool = True,
    accuracy_data: str | Path | None = None,
    accuracy_count: int = 1000,
) -> Any:
    """Export ``weights``' inference network for ``task`` (default: the weights' own) in ``fmt``,
    checked against PyTorch on real photos (default: the task's ``check_images`` folder).

    int8 (ONNX only) quantizes the convolutions and the classifier (the decoding stays float),
    calibrated on ``calibration_count`` photos spread over ``calibration_images``; its check reports
    the difference from PyTorch instead of enforcing a tolerance. An existing ``out`` is refused unless
    ``overwrite``; the input is never overwritten. The int8 file records its accuracy change against
    fp32, measured on up to ``accuracy_count`` held-out labelled photos (``accuracy_data``, default the
    shared data; :mod:`mnet.tasks.runtime.int8_accuracy`): the per-machine runtime choice reads it."""
    from ..registry import get_task
    from .export import check_export, export_torchscript, write_metadata
    from .int8_accuracy import ProbeInputs, measure_int8_accuracy
    from .onnx import OrtSession

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if int8 and fmt != "onnx":
        raise ValueError("--int8 needs --format onnx (int8 runs in ONNX Runtime)")
    if calibration_count < 1:
        raise ValueError(f"calibration count must be >= 1, got {calibration_count}")
    task = task or weights_task(weights)
    if out is None:  # into the cache, where `mnet predict` and the demo look (and the runtime choice times it)
        if fmt != "onnx":
            raise ValueError("only ONNX exports go into the cache: give --out for TorchScript")
        out, overwrite = _cache_target(task, weights, int8), True
    out = Path(out)
    _refuse_own_input(weights, out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    p = load_pretrained(task, weights)
    task_obj = get_task(task)
    files = expand_images(check_images) if check_images else default_check_images(task_obj)
    photos = [load_rgb(f) for f in files]
    if fmt == "torchscript":
        x = np.stack([p.preprocess.to_array(im) for im in photos])
        net = task_obj.inference_network(p.model)
        return export_torchscript(net, out, x, dynamic_batch=getattr(net, "dynamic_batch", True))
    if not int8:
        return export_pretrained(p, out, photos)
    from .quantize import quantize_onnx

    fp32_path = out.with_name(out.stem + ".fp32.onnx")
    try:
        export_pretrained(p, fp32_path, photos)
        net = task_obj.inference_network(p.model)
        batch = 16 if getattr(net, "dynamic_batch", True) else 1
        cal_files = expand_images(calibration_images or [default_calibration_images(task_obj)], limit=calibration_count)
        cal = preprocess_files(p.preprocess, cal_files, progress=progress, desc="calibration images")
        quantize_onnx(
            fp32_path, out, (cal[i : i + batch] for i in range(0, len(cal), batch)), method=calibration_method
        )
        x = np.stack([p.preprocess.to_array(im) for im in photos])
        report = check_export(net, OrtSession(out), x, path=out, fmt="onnx int8", rtol=None, batched=batch > 1)
        data = Path(accuracy_data) if accuracy_data else None
        probe = ProbeInputs(task, fp32_path, out, cal_files, data, accuracy_count, progress)
        record, why = measure_int8_accuracy(probe)
    finally:
        fp32_path.unlink(missing_ok=True)
    if record is None:
        return replace(report, int8_accuracy=f"no int8 accuracy record ({why}): the runtime choice keeps fp32")
    write_metadata(out, record.to_metadata())
    return replace(report, int8_accuracy=record.summary())
