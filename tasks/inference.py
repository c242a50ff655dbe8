"""The one inference path: image → preprocessing → network → decoding → :class:`~mnet.tasks.results.Result`.

A :class:`Predictor` holds a *session* — any callable taking a preprocessed float32 (N, 3, H, W) batch
and returning the network's named outputs as numpy arrays — plus the weights' input recipe and labels.
PyTorch (:class:`TorchSession`, around ``Task.inference_network``), ONNX Runtime
(``mnet.tasks.runtime.sessions``) and an exported ``.onnx`` file are all sessions of the same network,
so ``mnet predict``, ``mnet eval``, the demo and the benchmarks all run this one path.

This module imports no torch unless a :class:`TorchSession` is built.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnet.weights.preprocess import Preprocess

from .decode import BATCH_ONE_KINDS, Frame, decode
from .results import Box, Label, Result

#: a network ready to run: preprocessed (N, 3, H, W) float32 → named numpy outputs
Session = Callable[[np.ndarray], Mapping[str, np.ndarray]]
#: per-image stages that :class:`Predictor` times
STAGES = ("decode", "preprocess", "model", "postprocess")
#: file suffixes treated as images when a folder is given
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class TorchSession:
    """``Task.inference_network(model)`` in PyTorch eager (inference mode, optional thread count)."""

    name = "torch"

    def __init__(self, network: Any, *, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.network = network.eval()
        self.threads = threads

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        device = next(iter(self.network.parameters()), torch.empty(0)).device
        with torch.inference_mode():
            out = self.network(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device))
        return {k: v.detach().cpu().numpy() for k, v in out.items()}

    def describe(self) -> str:
        return f"torch ({self.threads or 'default'} threads)"


def as_rgb(image: Image.Image | np.ndarray) -> Image.Image:
    """A PIL image or an RGB uint8 (H, W, 3) array (a camera frame) → an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr)


@dataclass
class Predictor:
    """A task's network on one session, with the weights' input recipe and labels."""

    task: str
    #: what the network outputs (a kind of :mod:`mnet.tasks.decode`)
    kind: str
    session: Session
    preprocess: Preprocess
    labels: list[str] | None
    #: the weights' name as the user gave it (shown with every result)
    model: str
    #: classes (or attributes) kept per image; detections below ``score_threshold`` are dropped
    top_k: int | None = 5
    score_threshold: float = 0.0
    #: what else the weights record (``model_kwargs``, e.g. a detector's COCO ``category_ids``)
    meta: dict[str, Any] = field(default_factory=dict)
    #: seconds per stage, one entry per image (see :meth:`timing_summary`)
    timings: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    @property
    def runtime(self) -> str:
        describe = getattr(self.session, "describe", None)
        return describe() if describe else getattr(self.session, "name", type(self.session).__name__)

    @property
    def runtime_reason(self) -> str:
        """Why this runtime runs the model (the per-machine choice's timings), when it was chosen."""
        return getattr(self.session, "reason", "")

    def frame(self, width: int, height: int) -> Frame:
        return Frame(width, height, *self.preprocess.box_frame(width, height))

    def draft_size(self) -> tuple[int, int]:
        """Smallest JPEG decode size that still leaves the network's crop at least its resolution."""
        side = math.ceil(self.preprocess.resolution / self.preprocess.crop_fraction)
        return side, side

    # -- the network and the decoding ----------------------------------------------------------------
    def outputs(self, x: np.ndarray) -> list[Mapping[str, np.ndarray]]:
        """The session's outputs for a batch: one mapping for the batch, or one per image for networks
        that run one image at a time (detections)."""
        if self.kind in BATCH_ONE_KINDS:
            return [self.session(x[i : i + 1]) for i in range(len(x))]
        return [self.session(x)]

    def decoded(self, x: np.ndarray, frames: Sequence[Frame], **options: Any) -> list[Any]:
        """Per image, the decoded items of the network's kind (``Label`` s, ``Box`` es, age/gender)."""
        opts = {"labels": self.labels, "top_k": self.top_k, "score_threshold": self.score_threshold, **options}
        items: list[Any] = []
        for i, out in enumerate(self.outputs(x)):
            fr = frames[i : i + 1] if self.kind in BATCH_ONE_KINDS else frames
            items += decode(self.kind, out, model=self.model, frames=fr, **opts)
        return items

    def results(self, x: np.ndarray, sizes: Sequence[tuple[int, int]], **options: Any) -> list[Result]:
        """A preprocessed batch of photos of (width, height) ``sizes`` → one :class:`Result` each."""
        frames = [self.frame(w, h) for w, h in sizes]
        return [self._result(item, size) for item, size in zip(self.decoded(x, frames, **options), sizes)]

    def _result(self, item: Any, size: tuple[int, int]) -> Result:
        r = Result(self.task, self.model, (int(size[0]), int(size[1])))
        if self.kind in ("classes", "attributes"):
            r.classes = list(item)
        elif self.kind == "boxes":
            r.boxes = list(item)
        else:
            raise ValueError(f"{self.model}: a {self.kind!r} network gives no image result on its own")
        return r

    # -- images in ------------------------------------------------------------------------------------
    def predict(self, image: Image.Image | np.ndarray, *, name: str | None = None, **options: Any) -> Result:
        """One photo (PIL image or RGB uint8 array) → its :class:`Result`, boxes in its pixels."""
        t1 = time.perf_counter()
        img = as_rgb(image)
        x = self.preprocess.to_array(img)[None]
        t2 = time.perf_counter()
        frames = [self.frame(*img.size)]
        outs = self.outputs(x)
        t3 = time.perf_counter()
        opts = {"labels": self.labels, "top_k": self.top_k, "score_threshold": self.score_threshold, **options}
        (item,) = decode(self.kind, outs[0], model=self.model, frames=frames, **opts)
        result = self._result(item, img.size)
        t4 = time.perf_counter()
        result.image = name
        self._record(result, {"preprocess": t2 - t1, "model": t3 - t2, "postprocess": t4 - t3})
        return result

    def predict_file(self, path: str | Path, **options: Any) -> Result:
        """A photo file (a JPEG much larger than the network's input decodes at a reduced scale) → its
        :class:`Result`, boxes in the pixels of the file's full size."""
        from .data.images import ORIGINAL_SIZE, load_rgb

        t0 = time.perf_counter()
        img = load_rgb(path, draft=self.draft_size())
        decode_s = time.perf_counter() - t0
        result = self.predict(img, name=str(path), **options)
        size = tuple(img.info.get(ORIGINAL_SIZE, img.size))
        if size != img.size:
            result = result.scaled(size[0] / img.width, size[1] / img.height, size)
        self.timings["decode"].append(decode_s)
        result.timings_ms["decode"] = decode_s * 1e3
        return result

    def _record(self, result: Result, seconds: Mapping[str, float]) -> None:
        for stage, s in seconds.items():
            self.timings[stage].append(s)
            result.timings_ms[stage] = s * 1e3

    def timing_summary(self) -> dict[str, float]:
        """Median milliseconds per image for each stage, their total, and the overhead over the model."""
        stages = [s for s in STAGES if self.timings[s]]
        if "model" not in stages:
            return {}
        med = {s: float(np.median(self.timings[s])) * 1e3 for s in stages}
        n = min(len(self.timings[s]) for s in stages)
        total = float(np.median([sum(self.timings[s][i] for s in stages) for i in range(n)])) * 1e3
        return {
            **{f"{s}_ms": v for s, v in med.items()},
            "total_ms": total,
            "overhead_over_model": total / med["model"] - 1,
        }


def predict_files(
    predict: Callable[[Path], Result], paths: Iterable[str | Path]
) -> tuple[list[Result], list[tuple[str, str]]]:
    """``predict`` on each file; a file that cannot be read or predicted is reported and skipped, the
    others go on. Returns (results, [(file, error message)])."""
    results, errors = [], []
    for path in paths:
        try:
            results.append(predict(Path(path)))
        except (ValueError, OSError) as e:
            errors.append((str(path), str(e)))
    return results, errors


def expand_images(inputs: Iterable[str | Path], *, limit: int | None = None) -> list[Path]:
    """Files as given, folders expanded (recursively, sorted) to their image files; errors name the path.

    With ``limit``, an evenly spaced subset (deterministic) of that many files."""
    inputs = list(inputs)
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
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if len(files) > limit:
            files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    return files


__all__ = [
    "Box",
    "Frame",
    "Label",
    "Predictor",
    "Result",
    "Session",
    "TorchSession",
    "as_rgb",
    "expand_images",
    "predict_files",
]
